# Sourced by the benchmark scripts that compare this commit with an anchor commit. Needs WORK.
# build_anchor_and_head COMMIT: builds the anchor's release rampart and loadgen in a temporary
# worktree ($WORK/anchor) with its own target directory (`target/anchor`: sharing one would let
# cargo take one build for the other), then this tree's, and copies each pair to
# $WORK/bin-anchor and $WORK/bin-head. The caller's cleanup removes the worktree.
build_anchor_and_head() {
  local target="${CARGO_TARGET_DIR:-$PWD/target}"
  git worktree add --detach "$WORK/anchor" "$1" >/dev/null
  (cd "$WORK/anchor" && CARGO_TARGET_DIR="$target/anchor" cargo build --release --quiet --bin rampart --example loadgen)
  mkdir -p "$WORK/bin-anchor" "$WORK/bin-head"
  cp "$target/anchor/release/rampart" "$target/anchor/release/examples/loadgen" "$WORK/bin-anchor/"
  cargo build --release --quiet --bin rampart --example loadgen
  cp "$target/release/rampart" "$target/release/examples/loadgen" "$WORK/bin-head/"
}
