#!/usr/bin/env bash
# The Python client's tests (issue 11): installs clients/python (its stubs generated from
# proto/ while it builds) with its test extras into a virtualenv outside the clone
# (PYCLIENT_VENV, default ~/.cache/rampart-pyclient/<hash of pyproject.toml and proto/>), then
# pytest against 3-node clusters of the release binary.
#
#   clients/python/run.sh            # what CI runs
#   clients/python/run.sh -k backtest
#
# RAMPART_BIN names a prebuilt binary (default: built here).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=tests/harness/venv.sh
source "$ROOT/tests/harness/venv.sh"
HERE=$ROOT/clients/python
if [ -z "${PYCLIENT_VENV:-}" ]; then
  hash=$(cat "$HERE/pyproject.toml" "$HERE/setup.py" "$ROOT/proto/rampart/v1/rampart.proto" | sha256sum | cut -c1-12)
  PYCLIENT_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rampart-pyclient/$hash"
fi
if [ ! -x "$PYCLIENT_VENV/bin/pytest" ]; then
  make_venv "$PYCLIENT_VENV"
fi
# Reinstalled every run (the package's own code may have changed; its dependencies are cached).
"$PYCLIENT_VENV/bin/pip" install --quiet --disable-pip-version-check "$HERE[test]"
rm -rf "$HERE/build" "$HERE"/*.egg-info
if [ -z "${RAMPART_BIN:-}" ]; then
  cargo build --release --locked --bins
  export RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
fi
cd "$HERE/tests"
exec "$PYCLIENT_VENV/bin/pytest" -q -s -p no:cacheprovider "$@"
