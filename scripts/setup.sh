#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 and install slt_sampler with its test extras.
# Idempotent: a second run only re-checks the install. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local c v
  for c in python3.14 python3.13 python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1 && ok "$c"; then command -v "$c"; return; fi
  done
  # pyenv installs whose shims refuse to run unless selected (.python-version does it
  # inside this checkout; this also covers a missing or different selection)
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])(\.[0-9]+)?$' | sort -rV); do
      c="$(pyenv root)/versions/$v/bin/python3"
      if [ -x "$c" ] && ok "$c"; then echo "$c"; return; fi
    done
  fi
  return 1
}

if [ ! -x .venv/bin/python ] || ! ok .venv/bin/python; then
  PY="$(find_python)" || {
    echo "slt_sampler needs Python >= 3.12 (ArviZ 1.x). Install one (e.g. pyenv install 3.12) and rerun." >&2
    exit 1
  }
  echo "creating .venv with $PY ($("$PY" --version))"
  rm -rf .venv
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/python -c "import jax, slt_sampler; print('slt_sampler ready on', jax.devices())"
