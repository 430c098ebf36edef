#!/usr/bin/env bash
# The one test command: installs the test peers, checks format and lints, builds once, runs
# every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build once and reuse across runs on the same machine; a fresh machine builds cold.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pharmatwin-target}"
export CARGO_TERM_COLOR=never

eval "$(scripts/test-deps.sh)"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== build"
cargo build --workspace --all-targets --locked

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
