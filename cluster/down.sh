#!/usr/bin/env bash
# Removes the cluster of `up.sh N`, volumes included, and the secrets up.sh made for it under
# cluster/.secrets/rampartN/ (a RAMPART_SECRETS directory of your own is left alone).
set -euo pipefail
n="${1:-3}"
here="$(cd "$(dirname "$0")" && pwd)"
default="$here/.secrets/rampart$n"
# The compose file names the secrets' paths: `down` needs them set, not present.
RAMPART_SECRETS="${RAMPART_SECRETS:-$default}" \
  docker-compose -p "rampart$n" -f "$here/compose-$n.yml" --profile spare down -v --remove-orphans
if [[ -z "${RAMPART_SECRETS:-}" ]]; then
  rm -rf "$default"
  rmdir "$here/.secrets" 2>/dev/null || true
fi
