#!/usr/bin/env python3
"""Checks on rendered deploy manifests, for scripts/test-deploy.sh.

  deploy_check.py validate MANIFESTS          every object against the Kubernetes schemas
                                             (kubernetes-validate, strict: unknown fields fail);
                                             CRD kinds (VerticalPodAutoscaler, ServiceMonitor)
                                             get a shape check of their own; every
                                             selector (Deployment, Service, PDB,
                                             NetworkPolicy, ServiceMonitor) selects the pods
                                             or the Service it is meant to
  deploy_check.py config MANIFESTS OUT_DIR   writes the Deployment's config.yaml to
                                             OUT_DIR/config.yaml and, to OUT_DIR/env, the
                                             variables its container gets (NAME=value; a value
                                             from a Secret or field becomes a dummy); fails if the
                                             config uses a ${VAR} the container does not get, or
                                             if the ConfigMap holds a secret
  deploy_check.py same-as-seed CONFIG SEED   CONFIG routes and templates as SEED does (the
                                             chart's extension keys aside)
"""

import re
import sys

import yaml

K8S_VERSION = "1.31.0"
CRD_KINDS = {
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
# Keys the chart adds to the seed's config (all extensions or upstream settings the seed left
# at their defaults): they do not change routing or messages.
EXTENSION_KEYS = {"logLevel", "logFormat", "maxEventAgeSeconds", "clusterName", "omitLookup",
                  "cacheSize", "kubeQPS", "kubeBurst", "leaderElection", "checkpoint",
                  "metricsNamePrefix", "namespace"}


def die(msg):
    sys.exit("deploy_check: " + msg)


def docs_of(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def name_of(d):
    return "%s %s/%s" % (d.get("kind"), d.get("metadata", {}).get("namespace", ""),
                         d.get("metadata", {}).get("name"))


def crd_shape(d):
    """Problems with a VerticalPodAutoscaler or ServiceMonitor (outside the built-in schemas)."""
    p = []
    meta, spec = d.get("metadata") or {}, d.get("spec") or {}
    if not meta.get("name") or not meta.get("namespace"):
        p.append("metadata.name and metadata.namespace are required")
    if d["kind"] == "VerticalPodAutoscaler":
        ref = spec.get("targetRef") or {}
        if ref.get("kind") != "Deployment" or ref.get("apiVersion") != "apps/v1" or not ref.get("name"):
            p.append("spec.targetRef must name an apps/v1 Deployment")
        mode = (spec.get("updatePolicy") or {}).get("updateMode")
        if mode not in (None, "Off", "Initial", "Recreate", "Auto", "InPlaceOrRecreate"):
            p.append("spec.updatePolicy.updateMode %r is not a VPA mode" % mode)
        for cp in (spec.get("resourcePolicy") or {}).get("containerPolicies") or []:
            if not cp.get("containerName"):
                p.append("a containerPolicy has no containerName")
        allowed = {"targetRef", "updatePolicy", "resourcePolicy", "recommenders"}
    else:
        sel = spec.get("selector") or {}
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            p.append("spec.selector selects nothing")
        eps = spec.get("endpoints") or []
        if not eps:
            p.append("spec.endpoints is empty")
        for ep in eps:
            if not ep.get("port") and not ep.get("targetPort"):
                p.append("an endpoint has no port")
            for k in ("interval", "scrapeTimeout"):
                if k in ep and not re.fullmatch(r"[0-9]+(ms|s|m|h)", str(ep[k])):
                    p.append("endpoint %s %r is not a duration" % (k, ep[k]))
        allowed = {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels",
                   "podTargetLabels", "sampleLimit"}
    extra = set(spec) - allowed
    if extra:
        p.append("unknown spec fields: %s" % ", ".join(sorted(extra)))
    return p


def selector_problems(docs):
    """Selectors that miss what they are meant to select: the Deployment's pods (for the
    Deployment itself, the Service, a PodDisruptionBudget and a NetworkPolicy) or the metrics
    Service (for a ServiceMonitor). The API server checks none of these but the first."""
    def selects(sel, labels):
        return bool(sel) and all(labels.get(k) == v for k, v in sel.items())

    p = []
    deps = [d for d in docs if d.get("kind") == "Deployment"]
    services = [d for d in docs if d.get("kind") == "Service"]
    for dep in deps:
        pods = dep["spec"]["template"]["metadata"].get("labels") or {}
        if not selects(dep["spec"]["selector"].get("matchLabels"), pods):
            p.append("%s: spec.selector does not select its own pod template" % name_of(dep))
    pod_labels = [dep["spec"]["template"]["metadata"].get("labels") or {} for dep in deps]
    for d in docs:
        kind, spec = d.get("kind"), d.get("spec") or {}
        if kind == "Service":
            sel = spec.get("selector")
        elif kind == "PodDisruptionBudget":
            sel = (spec.get("selector") or {}).get("matchLabels")
        elif kind == "NetworkPolicy":
            sel = (spec.get("podSelector") or {}).get("matchLabels")
        elif kind == "ServiceMonitor":
            sel = (spec.get("selector") or {}).get("matchLabels")
            if not any(selects(sel, s["metadata"].get("labels") or {}) for s in services):
                p.append("%s: selects no Service of this rendering" % name_of(d))
            continue
        else:
            continue
        if not any(selects(sel, labels) for labels in pod_labels):
            p.append("%s: selects none of the Deployment's pods" % name_of(d))
    return p


def validate(path):
    import kubernetes_validate

    docs = docs_of(path)
    if not docs:
        die("%s: no objects" % path)
    problems, kinds = [], []
    for d in docs:
        kinds.append(d.get("kind"))
        if (d.get("apiVersion"), d.get("kind")) in CRD_KINDS:
            problems += ["%s: %s" % (name_of(d), p) for p in crd_shape(d)]
            continue
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append("%s: %s at %s" % (name_of(d), e.message,
                                              "/".join(map(str, e.path)) or "(top)"))
        except kubernetes_validate.SchemaNotFoundError:
            problems.append("%s: no Kubernetes schema for %s %s (a CRD kind?)"
                            % (name_of(d), d.get("apiVersion"), d.get("kind")))
    problems += selector_problems(docs)
    if problems:
        print("deploy_check: %s: invalid objects:" % path, file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        sys.exit(1)
    print("deploy_check: %d objects valid (%s)" % (len(docs), ", ".join(sorted(set(kinds)))))


SECRET_RE = re.compile(r"xox[abpr]-|hooks\.slack\.com/services/|glsa_|Bearer [A-Za-z0-9]")


def config(path, out_dir):
    docs = docs_of(path)
    deps = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deps) != 1:
        die("expected one Deployment, found %d" % len(deps))
    dep = deps[0]
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    vol = next(v for v in spec["volumes"] if "configMap" in v)
    cm = next(d for d in docs if d.get("kind") == "ConfigMap"
              and d["metadata"]["name"] == vol["configMap"]["name"])
    text = cm["data"]["config.yaml"]
    for d in docs:
        if d.get("kind") == "ConfigMap":
            for k, v in (d.get("data") or {}).items():
                m = SECRET_RE.search(str(v))
                if m:
                    die("ConfigMap %s key %s holds a secret (%r…): secrets belong in a Secret"
                        % (d["metadata"]["name"], k, m.group(0)))
    env = {}
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        else:
            env[e["name"]] = "https://dummy.invalid/" + e["name"].lower()
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}", text))
    missing = sorted(n for n, default in used if not default and n not in env)
    if missing:
        die("the config uses %s, which the Deployment's container does not get"
            % ", ".join("${%s}" % n for n in missing))
    with open(out_dir + "/config.yaml", "w", encoding="utf-8") as f:
        f.write(text)
    with open(out_dir + "/env", "w", encoding="utf-8") as f:
        for k, v in sorted(env.items()):
            f.write("%s=%s\n" % (k, v))


def same_as_seed(config_path, seed_path):
    with open(config_path, encoding="utf-8") as f:
        text = f.read().replace("${SLACK_WEBHOOK_URL}", "${WEBHOOK_URL}")
    mine = yaml.safe_load(text)
    with open(seed_path, encoding="utf-8") as f:
        seed = yaml.safe_load(f)
    mine = {k: v for k, v in mine.items() if k not in EXTENSION_KEYS}
    if mine != seed:
        for k in sorted(set(mine) | set(seed)):
            if mine.get(k) != seed.get(k):
                print("deploy_check: %s differs from the seed:\n  chart: %s\n  seed:  %s"
                      % (k, yaml.safe_dump(mine.get(k))[:2000], yaml.safe_dump(seed.get(k))[:2000]),
                      file=sys.stderr)
        sys.exit(1)
    print("deploy_check: %s routes and templates exactly as %s" % (config_path, seed_path))


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "validate":
        validate(a[1])
    elif len(a) == 3 and a[0] == "config":
        config(a[1], a[2])
    elif len(a) == 3 and a[0] == "same-as-seed":
        same_as_seed(a[1], a[2])
    else:
        die("usage: see the docstring of scripts/deploy_check.py")


if __name__ == "__main__":
    main()
