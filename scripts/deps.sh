#!/usr/bin/env bash
# Installs the Debian 12 packages chatra-bridge needs to build, run and test.
# Idempotent: packages already present are not touched, and apt-get runs
# only when something is missing.  Needs root (or sudo) for the install.
set -euo pipefail

packages=(
  build-essential cmake pkg-config python3
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libcurl4-openssl-dev
  libjansson-dev libsqlite3-dev libcmocka-dev sqlite3
)
if [ "${1:-}" = "--test" ]; then
  # valgrind for the leak pass; a real Redmine (issue 5) for the tracker tests.
  packages+=(valgrind redmine redmine-sqlite puma)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

redmine_gemfile() {
  # Bundler loads only the gems a Gemfile names: Redmine is served by puma in the tests.
  local f=/usr/share/redmine/Gemfile.local
  if [ -d /usr/share/redmine ] && ! grep -qs '"puma"' "$f"; then
    echo 'gem "puma"' | ${sudo:-} tee -a "$f" >/dev/null
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  redmine_gemfile
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
redmine_gemfile
