#!/usr/bin/env bash
# The main job: the whole twin with three simulated plants, web view on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pharmatwin-target}"
exec cargo run --locked --bin pharmatwin -- demo "$@"
