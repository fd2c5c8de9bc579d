#!/usr/bin/env bash
# The bridge supports every Python from 3.11 on (pyproject.toml: requires-python), and
# `make test` runs the whole suite on one of them (.venv's). This runs what needs no
# peer, tests/unit, and the wheel's round trip (built, installed in a fresh venv outside
# the checkout, `mailsms serve`, a mail in, the SMS out, the status mail back) on every
# other supported Python this machine has (python3.11 … python3.14 on the PATH, or
# installed by pyenv without being its current version), each in its own virtualenv
# .venv-3.N, made once and again when pyproject.toml changes.
# A version the machine lacks is named and left out; one that is present must pass.
# The versions install and run side by side (each run is one process; the tests use
# port 0 and temporary directories), and each one's output is shown when it is done.
# Found this way: Python 3.13.0 refused to import a module whose docstring held an
# unpaired surrogate, and its JSON parser follows nesting deeper than 3.11's.
set -euo pipefail
cd "$(dirname "$0")/.."

# python$1 on the PATH that runs, else pyenv's newest 3.N.x; nothing when neither
find_python() {
  local py
  py=$(command -v "python$1" 2>/dev/null || true)
  if [ -n "$py" ] && "$py" -c 'import sys' >/dev/null 2>&1; then
    echo "$py"
    return
  fi
  local root
  root=$(pyenv root 2>/dev/null || true)
  [ -n "$root" ] || return 0
  for py in $(ls -d "$root/versions/$1".*/bin/"python$1" 2>/dev/null | sort -V -r); do
    if "$py" -c 'import sys' >/dev/null 2>&1; then
      echo "$py"
      return
    fi
  done
}

# Python $1 at $2: its venv when missing or stale, then its tests
one_version() {
  local v=$1 py=$2 venv=.venv-$1
  if ! cmp -s pyproject.toml "$venv/pyproject.installed"; then
    echo "test-pythons: installing the test dependencies for Python $v into $venv"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --no-input --disable-pip-version-check -e '.[test]'
    cp pyproject.toml "$venv/pyproject.installed"
  fi
  echo "test-pythons: Python $v: tests/unit and the wheel's round trip"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit tests/e2e/test_wheel_install.py
}

main=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
declare -A jobs=()
for v in 3.11 3.12 3.13 3.14; do
  [ "$v" = "$main" ] && continue
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "test-pythons: no python$v on this machine; not tested on it"
    continue
  fi
  one_version "$v" "$py" > "$logs/$v" 2>&1 &
  jobs[$v]=$!
done
failed=()
for v in $(printf '%s\n' "${!jobs[@]}" | sort -V); do
  status=0
  wait "${jobs[$v]}" || status=$?
  cat "$logs/$v"
  if [ "$status" -ne 0 ]; then
    failed+=("$v")
  fi
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "test-pythons: failed on Python ${failed[*]}"
  exit 1
fi
