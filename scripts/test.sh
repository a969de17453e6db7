#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (compat corpus included),
# a compile check of the benchmarks, the deploy checks, and a bounded fuzzing run of every
# input from outside (FUZZ_SECONDS per target, default 60; 0 skips it). Run from anywhere:
# ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo bench --workspace --locked --no-run
./scripts/test-deploy.sh
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  ./scripts/fuzz.sh
fi
