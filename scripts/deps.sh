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
  packages+=(valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
