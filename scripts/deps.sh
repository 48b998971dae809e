#!/usr/bin/env bash
# Installs the Debian 12 packages chatra-bridge needs to build, run and test.
#   scripts/deps.sh           build and run
#   scripts/deps.sh --test    also the test tools (valgrind, the Prometheus parser, Redmine,
#                             systemd-analyze, strace, headless Chromium for the admin page)
#   scripts/deps.sh --bench   also the benchmark tools (wrk, nginx-light)
# Idempotent: packages already present are not touched, and apt-get runs
# only when something is missing.  Needs root (or sudo) for the install.
#
# The real Redmine the tracker tests run against is optional outside CI:
# when its packages cannot be installed, the Redmine tests are skipped and
# say why.  In CI (CI=true) it is required like everything else.
set -euo pipefail

packages=(
  build-essential cmake pkg-config python3
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libcurl4-openssl-dev
  libjansson-dev libsqlite3-dev libcmocka-dev sqlite3 libunistring-dev tzdata libxml2-dev
)
optional=()
case "${1:-}" in
  --test)
    # valgrind for the leak pass; Prometheus's own text-format parser reads /metrics
    # (run with Debian's /usr/bin/python3); a real Redmine (issue 5) for the tracker tests.
    # The install tests (test_install, test_package): systemd-analyze checks the unit,
    # strace the calls its filter must allow, shellcheck the maintainer scripts,
    # dpkg-shlibdeps (dpkg-dev) the package's dependencies.
    # The admin page's browser tests (test_browser_*): headless Chromium driven by Debian's
    # python3 with selenium (/usr/bin/python3).
    packages+=(valgrind python3-prometheus-client systemd strace shellcheck dpkg-dev
               chromium chromium-driver python3-selenium)
    optional+=(redmine redmine-sqlite puma)
    ;;
  --bench)
    # tests/bench: wrk drives the load, nginx is the ceiling of an HTTP round trip.
    packages+=(wrk nginx-light)
    ;;
esac
if [ "${CI:-}" = "true" ]; then
  packages+=("${optional[@]}")
  optional=()
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

missing_of() {
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      echo "$p"
    fi
  done
}

redmine_gemfile() {
  # Bundler loads only the gems a Gemfile names: Redmine is served by puma in the tests.
  local f=/usr/share/redmine/Gemfile.local
  if [ -d /usr/share/redmine ] && ! grep -qs '"puma"' "$f"; then
    echo 'gem "puma"' | $sudo tee -a "$f" >/dev/null
  fi
}

mapfile -t missing < <(missing_of "${packages[@]}")
mapfile -t missing_optional < <(missing_of "${optional[@]}")
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  updated=1
  $sudo apt-get install -y -qq "${missing[@]}"
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
  echo "deps: installing ${missing_optional[*]}"
  if { [ $updated -eq 1 ] || $sudo apt-get update -qq; } && $sudo apt-get install -y -qq "${missing_optional[@]}"; then
    :
  else
    echo "deps: WARNING: could not install ${missing_optional[*]}; the Redmine tests will be skipped" >&2
  fi
fi
redmine_gemfile
