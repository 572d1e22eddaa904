#!/usr/bin/env bash
# The operator console in a real browser (issue 14): headless Chromium (Debian's chromium and
# chromium-driver) driven by Selenium (pinned in requirements.txt, in a virtualenv outside the
# clone: CONSOLE_VENV, default ~/.cache/rampart-console/<hash>) against 3-node clusters of the
# release binary, one of them with an access file.
#
#   tests/console/run.sh                            # what CI runs
#   RAMPART_CONSOLE_SHOTS=docs/console tests/console/run.sh   # also refresh the screenshots
#   tests/console/run.sh -k kill                    # pytest arguments pass through
#
# RAMPART_BIN names a prebuilt binary (default: built here).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=tests/harness/venv.sh
source "$ROOT/tests/harness/venv.sh"
HERE=$ROOT/tests/console
for tool in chromium chromedriver; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/console/run.sh: $tool is missing (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
done
if [ -z "${CONSOLE_VENV:-}" ]; then
  hash=$(sha256sum "$HERE/requirements.txt" | cut -c1-12)
  CONSOLE_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rampart-console/$hash"
fi
if [ ! -x "$CONSOLE_VENV/bin/pytest" ]; then
  make_venv "$CONSOLE_VENV"
  "$CONSOLE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi
if [ -z "${RAMPART_BIN:-}" ]; then
  cargo build --release --locked --workspace --bins
  export RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
fi
if [ -n "${RAMPART_CONSOLE_SHOTS:-}" ]; then
  mkdir -p "$RAMPART_CONSOLE_SHOTS"
  RAMPART_CONSOLE_SHOTS=$(cd "$RAMPART_CONSOLE_SHOTS" && pwd)
  export RAMPART_CONSOLE_SHOTS
fi
cd "$HERE"
exec "$CONSOLE_VENV/bin/pytest" -q -s -p no:cacheprovider "$@"
