#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (compat corpus included),
# and a compile check of the benchmarks. Run from anywhere: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo bench --workspace --locked --no-run
./scripts/test-deploy.sh
