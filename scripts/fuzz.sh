#!/usr/bin/env bash
# Fuzzes the inputs from outside (fuzz/fuzz_targets): the config loader, the template engine,
# the event reader and the watch line decoder, each for FUZZ_SECONDS (default 60), with
# libFuzzer through cargo-fuzz on the stable toolchain (no sanitizer; the engine's own bounds
# are what is tested: a panic, a stack overflow, an allocation over 2 GiB or an input taking
# over 10 s is a failure).
#
# Each target first runs its regression inputs (fuzz/regressions/<target>: the hostile inputs
# of issue 9 and every crash found since, kept), then fuzzes from a corpus seeded with the
# compatibility fixtures. A crash is saved under fuzz/artifacts/<target>/: add it to
# fuzz/regressions/<target>/ with the fix.
#
#   ./scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=600 ./scripts/fuzz.sh template
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config template event_json watch_line)
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
fuzz=(cargo fuzz run --sanitizer none --release --debug-assertions)
corpus_root=$(mktemp -d)
trap 'rm -rf "$corpus_root"' EXIT
python3 - "$corpus_root" <<'PY'
import json, os, sys
root = sys.argv[1]
fixtures = os.path.join(os.path.dirname(os.getcwd()), "tests", "fixtures", "compat")
def put(target, i, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{i}"), "w") as f:
        f.write(data)
seen = set()
with open(os.path.join(fixtures, "templates.jsonl")) as f:
    for line in f:
        t = json.loads(line)["template"]
        if t not in seen:
            seen.add(t)
            put("template", len(seen), t)
with open(os.path.join(fixtures, "events.jsonl")) as f:
    for i, line in enumerate(f):
        if i % 20 == 0:
            put("event_json", i, line)
            obj = json.loads(line)
            put("watch_line", i, json.dumps({"type": "MODIFIED" if i % 40 else "ADDED", "object": obj}))
for i, name in enumerate(sorted(os.listdir(os.path.join(fixtures, "configs")))):
    with open(os.path.join(fixtures, "configs", name)) as f:
        put("config", i, f.read())
PY
for t in "${targets[@]}"; do
  echo "== fuzz target $t: regression inputs"
  "${fuzz[@]}" "$t" regressions/"$t"/* -- -rss_limit_mb=2048 -timeout=10
  echo "== fuzz target $t: ${seconds}s"
  log="$corpus_root/$t.log"
  status=0
  "${fuzz[@]}" "$t" "$corpus_root/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=8192 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E "^#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t failed (exit $status): the input is under fuzz/artifacts/$t" >&2
    exit 1
  fi
done
