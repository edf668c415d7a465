#!/usr/bin/env bash
# Install the external programs the test suite runs for real, where they are missing:
# promtool, prometheus, alertmanager and amtool (Debian packages), Chromium (Debian package,
# for the landing-page browser test), openssl (test certificates), valgrind (the instruction
# benchmark's smoke test) and Stoplight Prism (npm, pinned in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
  || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null || missing+=(chromium)
command -v openssl >/dev/null || missing+=(openssl)
command -v valgrind >/dev/null || missing+=(valgrind)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "install-test-tools: cannot install ${missing[*]} without root; those tests will skip" >&2
    missing=()
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-test-tools: installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x node_modules/.bin/prism ] || [ package-lock.json -nt node_modules/.bin/prism ]; then
  if command -v npm >/dev/null; then
    echo "install-test-tools: installing npm packages (Stoplight Prism)"
    SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  else
    echo "install-test-tools: npm is missing; the Prism tests will skip" >&2
  fi
fi
