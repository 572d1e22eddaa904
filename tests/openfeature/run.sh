#!/usr/bin/env bash
# rampart's gates through unmodified OpenFeature SDKs (issue 10): the Python SDK with its OFREP
# provider (and its flagd provider, once the node serves flagd) against a 3-node cluster of the
# release binary. The SDKs are pinned in requirements.txt and installed from PyPI into a
# virtualenv outside the clone (OPENFEATURE_VENV, default ~/.cache/rampart-openfeature/<hash>).
#
#   tests/openfeature/run.sh            # what CI runs
#   tests/openfeature/run.sh -k kill    # pytest arguments pass through
#
# RAMPART_BIN names a prebuilt binary (default: built here, target/release/rampart or under
# CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=tests/harness/venv.sh
source "$ROOT/tests/harness/venv.sh"
HERE=$ROOT/tests/openfeature
if [ -z "${OPENFEATURE_VENV:-}" ]; then
  hash=$(sha256sum "$HERE/requirements.txt" | cut -c1-12)
  OPENFEATURE_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rampart-openfeature/$hash"
fi
if [ ! -x "$OPENFEATURE_VENV/bin/pytest" ]; then
  make_venv "$OPENFEATURE_VENV"
  "$OPENFEATURE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi
if [ -z "${RAMPART_BIN:-}" ]; then
  cargo build --release --locked --workspace --bins
  export RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
fi
cd "$HERE"
exec "$OPENFEATURE_VENV/bin/pytest" -q -s -p no:cacheprovider "$@"
