#!/usr/bin/env bash
# Builds the rampart image with no registry: the release binary and the shared libraries
# `ldd` lists, copied into an empty root filesystem, `FROM scratch`.
#   cluster/build-image.sh [TAG]        (default rampart:local)
# Honours CARGO_TARGET_DIR; RAMPART_BIN skips the build and uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-rampart:local}"
if [[ -z "${RAMPART_BIN:-}" ]]; then
  cargo build --release --bin rampart
  RAMPART_BIN="${CARGO_TARGET_DIR:-target}/release/rampart"
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/data" "$root/tmp"
cp "$RAMPART_BIN" "$root/rampart"
# Every library the dynamic loader needs, at the path it looks for it (the loader included).
ldd "$RAMPART_BIN" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
VOLUME /data
EXPOSE 7400
ENTRYPOINT ["/rampart"]
CMD ["--help"]
DOCKERFILE
docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
