#!/usr/bin/env bash
# Builds the rampart image with no registry: the release binary and the shared libraries
# `ldd` lists, copied into an empty root filesystem, `FROM scratch`.
#   cluster/build-image.sh [TAG]        (default rampart:local)
# Honours CARGO_TARGET_DIR; RAMPART_BIN skips the build and uses that binary.
# RAMPART_IMAGE_FAKETIME=1 adds the host's libfaketime (Debian `faketime`) for the chaos clock
# drill, labelled rampart.faketime=1; it is loaded only where LD_PRELOAD names it.
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
faketime=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
objects=("$RAMPART_BIN")
label=""
if [[ "${RAMPART_IMAGE_FAKETIME:-}" == 1 ]]; then
  [[ -f "$faketime" ]] || { echo "RAMPART_IMAGE_FAKETIME=1 but no $faketime (apt-get install faketime)" >&2; exit 1; }
  objects+=("$faketime")
  mkdir -p "$root$(dirname "$faketime")"
  cp -L "$faketime" "$root$faketime"
  label='LABEL rampart.faketime="1"'
fi
# Every library the dynamic loader needs, at the path it looks for it (the loader included).
for object in "${objects[@]}"; do ldd "$object"; done | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
VOLUME /data
EXPOSE 7400
LABEL_LINE
ENTRYPOINT ["/rampart"]
CMD ["--help"]
DOCKERFILE
sed -i "s|^LABEL_LINE\$|$label|" "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
