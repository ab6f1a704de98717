#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine: system packages, then .venv.
# Usage: scripts/setup.sh [serve|test]   (test also installs the browser for end-to-end tests)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(dataset-fashion-mnist)
[ "${1:-serve}" = test ] && want+=(chromium fonts-dejavu-core)
missing=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Reinstall only when the dependency list changed.
stamp=.venv/.headstart-installed
sig=$(sha256sum pyproject.toml | cut -c1-16)-${1:-serve}
if [ "$(cat "$stamp" 2>/dev/null)" != "$sig" ]; then
  extras="[bodies]"; [ "${1:-serve}" = test ] && extras="[test]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
  echo "$sig" > "$stamp"
fi
