"""The pods and ReplicaSets the stand-in cluster runs for the workloads helm and kubectl stored
(tests only; see README.md here). Derived when asked, never stored: each Deployment has one
ReplicaSet (its current pod template; a rollout completes at once) with `spec.replicas` pods,
each StatefulSet `spec.replicas` pods NAME-0…; every container Running and ready, spread over the
schedulable nodes. A test switch in the state file, `pod_faults` {"NS/WORKLOAD": {"reason":
"CrashLoopBackOff", "restarts": N}}, puts the workload's first pod's containers in that state.
Object shapes: kubernetes/api release-1.32 core/v1 Pod and apps/v1 ReplicaSet (types.go)."""
import hashlib, json

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery pkg/util/rand SafeEncodeString


def safe(text, n):
    """n characters of `text`'s SHA-256 in the alphabet Kubernetes names pods and templates with."""
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:n])


def template_hash(template):
    # Upstream: fnv32a of the template (controller.ComputeHash), SafeEncodeString'd; here the
    # template's JSON, so a changed template (a restartedAt annotation) gives a new ReplicaSet.
    return safe(json.dumps(template, sort_keys=True), 10)


def meta(o):
    return o.get("metadata", {})


def replicasets(objs, stale=None):
    """`stale` {"NS/DEPLOYMENT": N} (test switch): a rollout stuck half way — an older ReplicaSet
    (revision 1, the current one revision 2) still holding N pods."""
    stale = stale or {}
    out = []
    for o in objs.values():
        if o.get("kind") != "Deployment":
            continue
        m, spec = meta(o), o.get("spec", {})
        template = spec.get("template", {})
        h = template_hash(template)
        replicas = spec.get("replicas", 1)
        old = stale.get(f"{m.get('namespace', 'default')}/{m['name']}")
        if old:
            out.append(replicaset(m, spec, template, safe(h + "-previous", 10), old, "1"))
        out.append(replicaset(m, spec, template, h, replicas, "2" if old else "1"))
    return out


def replicaset(m, spec, template, h, replicas, revision):
    labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": h})
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{m['name']}-{h}", "namespace": m.get("namespace", "default"),
                     "labels": labels,
                     "annotations": {"deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
                                     "deployment.kubernetes.io/max-replicas": str(spec.get("replicas", 1) + 1),
                                     "deployment.kubernetes.io/revision": revision},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": m["name"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": replicas, "selector": spec.get("selector", {}),
                 "template": dict(template, metadata=dict(template.get("metadata") or {}, labels=labels))},
        "status": {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "observedGeneration": 1}}


def pod(ns, name, owner_kind, owner, template, node, fault, started):
    containers = (template.get("spec") or {}).get("containers") or []
    statuses = []
    for c in containers:
        s = {"name": c.get("name", "app"), "image": c.get("image", ""), "imageID": "",
             "containerID": "containerd://" + safe(name + c.get("name", ""), 32),
             "ready": True, "started": True, "restartCount": 0,
             "state": {"running": {"startedAt": started}}, "lastState": {}}
        if fault:
            # A container that keeps exiting: kubelet's back-off (pkg/kubelet/kuberuntime).
            s.update(ready=False, started=False, restartCount=fault.get("restarts", 0),
                     state={"waiting": {"reason": fault["reason"],
                                        "message": f"back-off 5m0s restarting failed container={s['name']} pod={name}_{ns}"}},
                     lastState={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started,
                                               "finishedAt": started}})
        statuses.append(s)
    ready = "False" if fault else "True"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": started,
                     "labels": (template.get("metadata") or {}).get("labels") or {},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": dict(template.get("spec") or {}, nodeName=node),
        "status": {"phase": "Running", "startTime": started,
                   "conditions": [{"type": t, "status": ready if t in ("Ready", "ContainersReady") else "True"}
                                  for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                            "ContainersReady", "PodScheduled")],
                   "containerStatuses": statuses}}


def pods(objs, state, nodes, started):
    faults = state.get("pod_faults", {})
    nodes = nodes or ["node"]
    out, i = [], 0
    for rs in replicasets(objs, state.get("stale_replicasets")):
        m = rs["metadata"]
        workload = m["ownerReferences"][0]["name"]
        for n in range(rs["spec"]["replicas"]):
            name = f"{m['name']}-{safe(m['name'] + str(n), 5)}"
            fault = faults.get(f"{m['namespace']}/{workload}") if n == 0 else None
            out.append(pod(m["namespace"], name, "ReplicaSet", m["name"], rs["spec"]["template"],
                           nodes[i % len(nodes)], fault, started))
            i += 1
    for o in objs.values():
        if o.get("kind") != "StatefulSet":
            continue
        m, spec = meta(o), o.get("spec", {})
        ns = m.get("namespace", "default")
        for n in range(spec.get("replicas", 1)):
            fault = faults.get(f"{ns}/{m['name']}") if n == 0 else None
            out.append(pod(ns, f"{m['name']}-{n}", "StatefulSet", m["name"], spec.get("template", {}),
                           nodes[i % len(nodes)], fault, started))
            i += 1
    return sorted(out, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
