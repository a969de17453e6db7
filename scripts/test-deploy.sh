#!/usr/bin/env bash
# Tests of the deploy artefacts: the Helm chart (deploy/helm/event-exporter) and the kustomize
# manifests (deploy/kubernetes). Installs the Python packages it needs when they are missing;
# fails clearly if another tool is. For each rendering:
#   - every object validates against the Kubernetes schemas (kubernetes-validate, strict);
#   - the config.yaml validates with `event-exporter check`, with exactly the environment the
#     Deployment gives the container (a ${VAR} it does not get fails), and holds no secret;
#   - the RBAC grants what the config needs and nothing broader (scripts/check_rbac.py).
# Plus: the chart's config for the seed app's values is the seed's config and routes the compat
# events as the seed does; values.schema.json rejects typos; replicas > 1 without leader
# election fails; the checkers fail on broken RBAC.
# Run from anywhere: ./scripts/test-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fail() { echo "test-deploy: FAIL: $*" >&2; exit 1; }
step() { echo "test-deploy: $*"; }

shared=${SHARED_DIR:-$repo/../shared}
helm_template=$shared/tools/helm-template/run.sh
[ -x "$helm_template" ] || fail "the helm-template tool is missing: $helm_template (set SHARED_DIR to the directory holding tools/helm-template)"
command -v kubectl >/dev/null || fail "kubectl is missing (needed for kubectl kustomize)"
# On a fresh machine the Python checkers' packages are installed here (from PyPI), and the
# helm-template tool apt-installs Go and sprig on its first use.
export DEBIAN_FRONTEND=noninteractive
if ! python3 -c 'import yaml, jsonschema, kubernetes_validate' 2>/dev/null; then
  step "installing kubernetes-validate, pyyaml, jsonschema (pip)"
  python3 -m pip install -q kubernetes-validate pyyaml jsonschema </dev/null >/dev/null \
    || fail "could not install kubernetes-validate pyyaml jsonschema with pip"
fi
# The binary under test: $EVENT_EXPORTER_BIN, else the workspace's debug build (built here; a
# no-op after `cargo test`).
if [ -z "${EVENT_EXPORTER_BIN:-}" ]; then
  command -v cargo >/dev/null || fail "cargo is missing (or set EVENT_EXPORTER_BIN)"
  cargo build -p event-exporter-bin --locked --quiet || fail "cargo build -p event-exporter-bin"
fi
bin=${EVENT_EXPORTER_BIN:-${CARGO_TARGET_DIR:-target}/debug/event-exporter}
case $bin in /*) ;; *) bin=$repo/$bin ;; esac
[ -x "$bin" ] || fail "$bin is missing: cargo build -p event-exporter-bin --locked"

chart=deploy/helm/event-exporter
fixtures=tests/fixtures/compat
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

render() { # NAME ARGS... : renders the chart into $work/NAME.yaml
  local name=$1; shift
  "$helm_template" "$chart" --name event-exporter-app --namespace monitoring "$@" >"$work/$name.yaml" 2>"$work/$name.err" \
    || { cat "$work/$name.err" >&2; fail "rendering the chart ($name: $*)"; }
}

check_manifests() { # NAME: the checks every rendering gets
  local name=$1 f=$work/$1.yaml
  python3 scripts/deploy_check.py validate "$f" || fail "$name: objects do not validate"
  mkdir -p "$work/$name.d"
  python3 scripts/deploy_check.py config "$f" "$work/$name.d" || fail "$name: config/env"
  # Exactly the container's environment (plus PATH), so a variable the Deployment lacks fails.
  env -i PATH="$PATH" $(cat "$work/$name.d/env") "$bin" --config "$work/$name.d/config.yaml" check \
    2>"$work/$name.check.err" || { cat "$work/$name.check.err" >&2; fail "$name: event-exporter check refused the config"; }
  python3 scripts/check_rbac.py "$f" || fail "$name: RBAC does not match the config"
  step "$name: ok"
}

step "helm chart"
render default
check_manifests default
grep -q 'kind: VerticalPodAutoscaler\|kind: ServiceMonitor\|kind: Secret' "$work/default.yaml" \
  && fail "default: renders a CRD kind or a Secret it does not need"

render seed -f "$chart/ci/seed-values.yaml"
check_manifests seed
grep -q 'kind: VerticalPodAutoscaler' "$work/seed.yaml" || fail "seed: no VerticalPodAutoscaler"
grep -q 'kind: Secret' "$work/seed.yaml" || fail "seed: no Secret for the tokens"

render ha -f "$chart/ci/ha-values.yaml"
check_manifests ha
python3 - "$work/ha.yaml" <<'PY' || fail "ha: replicas, PDB, ServiceMonitor or the thread-cache Role are wrong"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
assert dep["spec"]["replicas"] == 3, dep["spec"]["replicas"]
assert any(d["kind"] == "PodDisruptionBudget" for d in docs)
assert any(d["kind"] == "ServiceMonitor" for d in docs)
assert any(d["kind"] == "Role" and d["metadata"]["namespace"] == "shared-state" for d in docs)
assert not any(d["kind"] == "Secret" for d in docs), "tokens come from existing Secrets"
PY

render config -f "$chart/ci/config-values.yaml"
check_manifests config

render namespaced -f "$chart/ci/namespaced-values.yaml"
check_manifests namespaced
grep -q 'kind: ClusterRole' "$work/namespaced.yaml" && fail "namespaced: a ClusterRole for a one-namespace watch"
grep -q 'type: Recreate' "$work/namespaced.yaml" || fail "namespaced: without leader election the Deployment must Recreate"

step "the chart's config for the seed's values is the seed app's config"
render seedexact --set managementCluster.name=gs-prod-1 --set slack.webhook=https://hooks.example/x \
  --set slack.token=xoxb-x --set 'slack.channel=#upgrades' --name release-name
mkdir -p "$work/seedexact.d"
python3 scripts/deploy_check.py config "$work/seedexact.yaml" "$work/seedexact.d" || fail "seedexact: config"
python3 scripts/deploy_check.py same-as-seed "$work/seedexact.d/config.yaml" "$fixtures/configs/seed-chart-rendered.yaml" \
  || fail "the chart's config differs from the seed app's"
# And it routes the compat corpus exactly as the seed does (webhook receivers by their seed names).
env -i PATH="$PATH" $(cat "$work/seedexact.d/env") "$bin" --config "$work/seedexact.d/config.yaml" route \
  --events "$fixtures/events.jsonl" 2>/dev/null >"$work/seed.routes" || fail "event-exporter route on the seed config"
python3 - "$work/seed.routes" "$fixtures/routes/seed-chart-rendered.jsonl" <<'PY' || fail "routing differs from the seed's"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(got) == len(want), (len(got), len(want))
bad = [(w["i"], g, w) for g, w in zip(got, want) if g.get("receivers") != w["receivers"]]
assert not bad, bad[:3]
n = sum(1 for w in want if w["receivers"])
assert n > 0, "the corpus routes nothing: the test would prove nothing"
print("test-deploy: %d events routed as the seed routes them (%d sent somewhere)" % (len(want), n))
PY

step "in-place upgrade of a seed release: the seed's Deployment selector"
render seedselector -f "$chart/ci/seed-values.yaml" --set selectorLabels.app=event-exporter-app --set selectorLabels.version=v1
check_manifests seedselector
python3 - "$work/seedselector.yaml" <<'PY' || fail "seedselector: the Deployment selector is not the seed's"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
# The seed app's selector (giantswarm/event-exporter-app: app: <chart name>, version: v1).
assert dep["spec"]["selector"] == {"matchLabels": {"app": "event-exporter-app", "version": "v1"}}, dep["spec"]["selector"]
assert dep["metadata"]["name"] == "event-exporter", dep["metadata"]["name"]
labels = dep["spec"]["template"]["metadata"]["labels"]
assert labels["app.kubernetes.io/name"] == "event-exporter", labels
PY

step "negative tests"
expect_render_failure() { # WHAT PATTERN ARGS...
  local what=$1 pattern=$2; shift 2
  if "$helm_template" "$chart" "$@" >/dev/null 2>"$work/neg.err"; then fail "$what: the render succeeded"; fi
  grep -q "$pattern" "$work/neg.err" || { cat "$work/neg.err" >&2; fail "$what: not the expected error ($pattern)"; }
  step "refused as expected: $what"
}
expect_render_failure "a misspelt top-level key (--set slak.token)" "slak" --set slak.token=x
printf 'slack:\n  chanel: "#x"\n' >"$work/typo.yaml"
expect_render_failure "a misspelt nested key (-f slack.chanel)" "chanel" -f "$work/typo.yaml"
expect_render_failure "a misspelt securityContext key" "readOnlyRootFileSystem" --set securityContext.readOnlyRootFileSystem=true
expect_render_failure "replicas 3 without leader election" "leader election is off" --set replicas=3 --set leaderElection.enabled=false
expect_render_failure "a slack token without a channel" "slack.channel is required" --set slack.token=xoxb-x
expect_render_failure "a grafana url without a token" "grafana.token or grafana.tokenSecretRef is required" --set grafana.url=https://grafana.example.com

step "an in-cluster Grafana behind a Service: its pod port is let through, and a seed-style \"Bearer …\" token is not doubled"
render grafana --set grafana.url=http://kube-prometheus-stack-grafana.monitoring.svc --set 'grafana.token=Bearer glsa_abc' --set grafana.team=a
check_manifests grafana
python3 - "$work/grafana.yaml" <<'PY' || fail "grafana: NetworkPolicy port or token"
import base64, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
np = next(d for d in docs if d["kind"] == "NetworkPolicy")
ports = {p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])}
assert 3000 in ports, ports
secret = next(d for d in docs if d["kind"] == "Secret")
assert base64.b64decode(secret["data"]["grafana-token"]) == b"glsa_abc", secret["data"]
PY

# The checkers must catch broken manifests.
printf 'rbac:\n  lookup: []\n' >"$work/nolookup-values.yaml"
render nolookup -f "$chart/ci/config-values.yaml" -f "$work/nolookup-values.yaml"
python3 scripts/check_rbac.py "$work/nolookup.yaml" 2>"$work/neg.err" && fail "check_rbac accepted RBAC without the config's kinds"
grep -q "missing: get deployments" "$work/neg.err" || { cat "$work/neg.err" >&2; fail "check_rbac: wrong complaint"; }
sed 's/^      - update$/      - "*"/' "$work/default.yaml" >"$work/starverb.yaml"
cmp -s "$work/default.yaml" "$work/starverb.yaml" && fail "could not inject a * verb"
python3 scripts/check_rbac.py "$work/starverb.yaml" 2>/dev/null && fail "check_rbac accepted a * verb"
python3 - "$work/default.yaml" "$work/broad.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "ClusterRole":
        d["rules"].append({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"]})
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
python3 scripts/check_rbac.py "$work/broad.yaml" 2>/dev/null && fail "check_rbac accepted cluster-wide configmap access"
sed 's/^  replicas: 1$/  replicas: 1\n  bogusField: 1/' "$work/default.yaml" >"$work/bogus.yaml"
cmp -s "$work/default.yaml" "$work/bogus.yaml" && fail "could not inject an unknown field"
python3 scripts/deploy_check.py validate "$work/bogus.yaml" >/dev/null 2>"$work/neg.err" && fail "kubernetes-validate accepted an unknown field"
grep -q bogusField "$work/neg.err" || { cat "$work/neg.err" >&2; fail "validate: wrong complaint"; }
printf 'config: |\n  receivers:\n  - name: s\n    slack:\n      token: xoxb-123-abc\n      channel: "#x"\n  route:\n    match:\n    - receiver: s\n' >"$work/leak-values.yaml"
render leak -f "$work/leak-values.yaml"
python3 scripts/deploy_check.py config "$work/leak.yaml" "$work" 2>"$work/neg.err" && fail "a token in the ConfigMap was not noticed"
grep -q "holds a secret" "$work/neg.err" || { cat "$work/neg.err" >&2; fail "config: wrong complaint"; }
python3 - "$work/default.yaml" "$work/badselector.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Service":
        d["spec"]["selector"] = {"app": "someone-else"}
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
python3 scripts/deploy_check.py validate "$work/badselector.yaml" >/dev/null 2>"$work/neg.err" && fail "validate accepted a Service selecting no pod"
grep -q "selects none of the Deployment's pods" "$work/neg.err" || { cat "$work/neg.err" >&2; fail "validate: wrong complaint on a selector"; }
step "checkers catch broken RBAC, unknown fields, stray selectors and leaked secrets"

step "kustomize manifests (deploy/kubernetes)"
kubectl kustomize deploy/kubernetes >"$work/kustomize.yaml" || fail "kubectl kustomize deploy/kubernetes"
check_manifests kustomize

step "all deploy tests passed"
