#!/usr/bin/env python3
"""Checks that rendered manifests give the exporter exactly the RBAC its config needs.

usage: check_rbac.py MANIFESTS.yaml   (a multi-document YAML stream; `-` for stdin)

Reads the Deployment (its ServiceAccount and namespace), the config.yaml of the ConfigMap it
mounts, and every Role/ClusterRole/RoleBinding/ClusterRoleBinding. From the config it derives
what the exporter does in the cluster:

- events get/list/watch: in every namespace, or only in the config's `namespace`;
- `get` on the involved kinds the rules name with `kind:` (unless `omitLookup`); when no rule
  names a kind, every kind is looked up (get on */*);
- leases get/update on its Lease and create, in its own namespace (leader election);
- configmaps get/update on the checkpoint ConfigMap and the Slack thread caches, and create.

It then asserts that each need is granted to the ServiceAccount, and that nothing broader is:
no `*` verbs, no grant that no need uses, get/update on configmaps and leases only by name.
Exit status 0 when all holds, 1 with every problem listed otherwise.
"""

import re
import sys

import yaml

# Involved kinds whose API group a rule may leave out (kind -> (group, resource)).
KNOWN_KINDS = {
    "Pod": ("", "pods"),
    "Node": ("", "nodes"),
    "Service": ("", "services"),
    "Namespace": ("", "namespaces"),
    "PersistentVolume": ("", "persistentvolumes"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "ConfigMap": ("", "configmaps"),
    "Deployment": ("apps", "deployments"),
    "ReplicaSet": ("apps", "replicasets"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "Cluster": ("cluster.x-k8s.io", "clusters"),
    "Machine": ("cluster.x-k8s.io", "machines"),
    "MachineDeployment": ("cluster.x-k8s.io", "machinedeployments"),
    "MachinePool": ("cluster.x-k8s.io", "machinepools"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "helmreleases"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    "Application": ("argoproj.io", "applications"),
}

ANY = object()  # a need that any API group satisfies (a kind of unknown group)


def plural(kind):
    k = kind.lower()
    if k.endswith("y") and k[-2:-1] not in "aeiou":
        return k[:-1] + "ies"
    if k.endswith(("s", "x", "ch", "sh")):
        return k + "es"
    return k + "s"


def fail_usage(msg):
    sys.exit("check_rbac: " + msg)


def load(path):
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def the_deployment(docs):
    deps = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deps) != 1:
        fail_usage("expected exactly one Deployment, found %d" % len(deps))
    return deps[0]


def config_of(docs, dep):
    """The config.yaml the Deployment's container reads (--config/-conf), from its ConfigMap."""
    spec = dep["spec"]["template"]["spec"]
    container = spec["containers"][0]
    path = None
    args = list(container.get("args") or []) + list(container.get("command") or [])
    for i, a in enumerate(args):
        m = re.match(r"^--?(?:config|conf)(?:=(.*))?$", str(a))
        if m:
            path = m.group(1) if m.group(1) is not None else args[i + 1]
    if not path:
        fail_usage("the Deployment's container has no --config argument")
    mount = next(
        (m for m in container.get("volumeMounts") or [] if path.startswith(m["mountPath"].rstrip("/") + "/")),
        None,
    )
    if not mount:
        fail_usage("no volume is mounted at the config path %s" % path)
    key = path[len(mount["mountPath"].rstrip("/")) + 1:]
    vol = next(v for v in spec.get("volumes") or [] if v["name"] == mount["name"])
    if "configMap" not in vol:
        fail_usage("the config volume %s is not a ConfigMap" % vol["name"])
    cm_name = vol["configMap"]["name"]
    ns = dep["metadata"].get("namespace")
    cms = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == cm_name
           and d["metadata"].get("namespace") == ns]
    if len(cms) != 1:
        fail_usage("ConfigMap %s/%s (the config) not found in the manifests" % (ns, cm_name))
    text = (cms[0].get("data") or {}).get(key)
    if text is None:
        fail_usage("ConfigMap %s has no key %s" % (cm_name, key))
    return yaml.safe_load(text) or {}


def rules_of(route):
    for r in (route.get("match") or []) + (route.get("drop") or []):
        yield r
    for sub in route.get("routes") or []:
        yield from rules_of(sub)


def kind_needs(config, scope):
    """(verb, group, resource, scope, name) needs for looking up involved objects."""
    if config.get("omitLookup"):
        return []
    rules = [r for r in rules_of(config.get("route") or {}) if r.get("kind")]
    if not rules:
        # No rule names a kind: every involved object is looked up.
        return [("get", "*", "*", scope, None)]
    needs = []
    for r in rules:
        api = str(r.get("apiVersion") or r.get("apiversion") or "")
        group = None
        if api and re.fullmatch(r"[a-z0-9.-]+/[a-z0-9]+|v1", api):
            group = api.split("/")[0] if "/" in api else ""
        words = str(r["kind"]).strip("^$()").split("|")
        for w in words:
            w = w.strip("^$()")
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", w):
                # A real regular expression: it may match any kind.
                needs.append(("get", "*", "*", scope, None))
                continue
            g, res = KNOWN_KINDS.get(w, (ANY, plural(w)))
            needs.append(("get", group if group is not None else g, res, scope, None))
    return needs


def needs_of(config, own_ns):
    needs = []
    watch_ns = str(config.get("namespace") or "") or None  # None: every namespace
    for verb in ("get", "list", "watch"):
        needs.append((verb, "", "events", watch_ns, None))
    needs += kind_needs(config, watch_ns)

    le = config.get("leaderElection") or {}
    lease = str(le.get("leaderElectionID") or "") or "event-exporter"
    if le.get("enabled"):
        needs += [("get", "coordination.k8s.io", "leases", own_ns, lease),
                  ("update", "coordination.k8s.io", "leases", own_ns, lease),
                  ("create", "coordination.k8s.io", "leases", own_ns, None)]

    cms = []
    cp = config.get("checkpoint") or {}
    if cp.get("enabled", True) is not False and not cp.get("file"):
        ref = cp.get("configMap") or {}
        cms.append((ref.get("namespace") or own_ns, ref.get("name") or lease + "-checkpoint"))
    for rcv in config.get("receivers") or []:
        cache = (rcv.get("slack") or {}).get("cache") or {}
        if cache.get("name") and cache.get("namespace") and not cache.get("file"):
            cms.append((cache["namespace"], cache["name"]))
    for ns, name in cms:
        needs += [("get", "", "configmaps", ns, name), ("update", "", "configmaps", ns, name),
                  ("create", "", "configmaps", ns, None)]
    return sorted(set(needs), key=str)


def grants_of(docs, sa_ns, sa_name):
    """(rule, scope) for each rule bound to the ServiceAccount; scope None is cluster-wide."""
    roles = {}
    for d in docs:
        if d.get("kind") in ("Role", "ClusterRole"):
            roles[(d["kind"], d["metadata"].get("namespace") if d["kind"] == "Role" else None,
                   d["metadata"]["name"])] = d.get("rules") or []
    grants, problems = [], []
    for b in docs:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name
                   and s.get("namespace") == sa_ns for s in b.get("subjects") or []):
            continue
        ref = b["roleRef"]
        bns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
        key = (ref["kind"], bns if ref["kind"] == "Role" else None, ref["name"])
        if key not in roles:
            problems.append("%s %s refers to %s %s, which is not in the manifests"
                            % (b["kind"], b["metadata"]["name"], ref["kind"], ref["name"]))
            continue
        for rule in roles[key]:
            grants.append((rule, bns, "%s/%s" % (ref["kind"], ref["name"])))
    return grants, problems


def covers(rule, scope, need):
    verb, group, res, ns, name = need
    if scope is not None and scope != ns:
        return False
    if verb not in rule.get("verbs", []):
        return False
    groups, resources = rule.get("apiGroups", []), rule.get("resources", [])
    if group is ANY:
        if res not in resources and "*" not in resources:
            return False
    elif group == "*":
        if "*" not in groups or "*" not in resources:
            return False
    elif (group not in groups and "*" not in groups) or (res not in resources and "*" not in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def used(rule, scope, needs):
    """Problems with a granted rule: each (verb, group, resource[, name]) it grants must serve a need."""
    problems = []
    if "*" in rule.get("verbs", []):
        problems.append("grants every verb (*)")
    for verb in rule.get("verbs", []):
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                names = rule.get("resourceNames") or [None]
                for name in names:
                    ok = False
                    for n in needs:
                        nverb, ngroup, nres, nns, nname = n
                        if nverb != verb or (scope is not None and nns is not None and nns != scope):
                            continue
                        if scope is None and nns is not None:
                            continue  # a cluster-wide grant for a namespaced need is too broad
                        if ngroup == "*" and nres == "*":
                            # Every kind is looked up: get on anything, but only get.
                            ok = ok or (verb == "get" and group == "*" and res == "*")
                            continue
                        if not (ngroup is ANY or ngroup == group) or nres != res:
                            continue
                        if name is None and nname is not None:
                            continue  # not limited to the names it needs
                        if name is not None and nname is not None and name != nname:
                            continue
                        ok = True
                    if not ok:
                        what = "%s %s%s%s" % (verb, group + "/" if group else "", res,
                                              "/" + name if name else "")
                        problems.append("grants %s%s, which the config does not need"
                                        % (what, " cluster-wide" if scope is None else " in " + scope))
    return problems


def main():
    if len(sys.argv) != 2:
        fail_usage("usage: check_rbac.py MANIFESTS.yaml")
    docs = load(sys.argv[1])
    dep = the_deployment(docs)
    own_ns = dep["metadata"].get("namespace")
    if not own_ns:
        fail_usage("the Deployment has no namespace")
    sa = dep["spec"]["template"]["spec"].get("serviceAccountName") or "default"
    config = config_of(docs, dep)
    needs = needs_of(config, own_ns)
    grants, problems = grants_of(docs, own_ns, sa)
    if not any(d.get("kind") == "ServiceAccount" and d["metadata"]["name"] == sa for d in docs):
        problems.append("ServiceAccount %s is not in the manifests" % sa)
    for need in needs:
        if not any(covers(rule, scope, need) for rule, scope, _ in grants):
            verb, group, res, ns, name = need
            g = "any group" if group is ANY else (group or "core")
            problems.append("missing: %s %s (%s)%s %s" % (
                verb, res, g, "/" + name if name else "",
                "in every namespace" if ns is None else "in namespace " + ns))
    for rule, scope, where in grants:
        for p in used(rule, scope, needs):
            problems.append("%s %s" % (where, p))
    label = "ServiceAccount %s/%s" % (own_ns, sa)
    if problems:
        print("check_rbac: %s: RBAC does not match the config:" % label, file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        sys.exit(1)
    print("check_rbac: %s: %d needs granted, nothing broader" % (label, len(needs)))


if __name__ == "__main__":
    main()
