#!/usr/bin/env bash
# Removes the cluster of `up.sh N`, volumes included.
set -euo pipefail
n="${1:-3}"
here="$(cd "$(dirname "$0")" && pwd)"
docker-compose -p "rampart$n" -f "$here/compose-$n.yml" --profile spare down -v --remove-orphans
