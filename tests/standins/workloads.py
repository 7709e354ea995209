"""The pods and ReplicaSets the stand-in cluster runs for the workloads helm and kubectl stored
(tests only; see README.md here). Derived when asked, never stored: each Deployment has one
ReplicaSet (its current pod template; a rollout completes at once) with `spec.replicas` pods,
each StatefulSet `spec.replicas` pods NAME-0…; every container Running and ready, spread over the
schedulable nodes. Switches in the state file:
- `boots` [time…]: the nodes started again at these times (an EC2 stop/start); each one after a
  pod's start restarted its containers, as the kubelet does after a reboot (below);
- `pod_faults` {"NS/WORKLOAD": {"reason": "CrashLoopBackOff", "restarts": N}}: the workload's
  first pod's containers crash-looping;
- `evictions` {"NS/DEPLOYMENT": "memory" | {"resource": "memory", "at": time}}: the kubelet
  evicted the Deployment's first pod under that pressure; the Evicted pod stays beside its
  replacement until deleted (`kubectl delete pod` removes the switch).
Object shapes: kubernetes/api release-1.32 core/v1 Pod and apps/v1 ReplicaSet (types.go)."""
import datetime, hashlib, json

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


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def container_status(pod_name, c, started, boots, fault, now):
    """One container's status. After each node boot the kubelet starts the container again with
    one more on its count (kubernetes/kubernetes release-1.32,
    pkg/kubelet/kuberuntime/kuberuntime_container.go `startContainer`: the previous container's
    count + 1, or from the log directory, `calcRestartCountByLogDir`, when the runtime lost it),
    and reports the container before it as `lastState` (pkg/kubelet/kubelet_pods.go
    `convertToAPIContainerStatuses`: the second-newest container of that name). containerd,
    started again with the host, finds that container's task gone and marks it exited
    `Unknown`, 255, finished when containerd recovered it, i.e. at boot (containerd
    internal/cri/server/restart.go `loadContainer`, `unknownExitCode`/`unknownExitReason`)."""
    name = c.get("name", "app")
    runs = [started] + boots
    s = {"name": name, "image": c.get("image", ""), "imageID": "",
         "containerID": "containerd://" + safe(pod_name + name + str(len(boots)), 32),
         "ready": True, "started": True, "restartCount": len(boots),
         "state": {"running": {"startedAt": runs[-1]}}, "lastState": {}}
    if boots:
        s["lastState"] = {"terminated": {
            "exitCode": 255, "reason": "Unknown", "startedAt": runs[-2], "finishedAt": runs[-1],
            "containerID": "containerd://" + safe(pod_name + name + str(len(boots) - 1), 32)}}
    if fault:
        # A container that keeps exiting: the kubelet's back-off between restarts, at most
        # MaxContainerBackOff (300 s), so its last exit is always recent (pkg/kubelet).
        crashed = stamp(now - datetime.timedelta(seconds=30))
        s.update(ready=False, started=False, restartCount=len(boots) + fault.get("restarts", 0),
                 state={"waiting": {"reason": fault["reason"],
                                    "message": f"back-off 5m0s restarting failed container={name} pod={pod_name}_{fault['ns']}"}},
                 lastState={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": crashed,
                                           "finishedAt": crashed}})
    return s


def pod(ns, name, owner_kind, owner, template, node, fault, started, boots, now):
    containers = (template.get("spec") or {}).get("containers") or []
    if fault:
        fault = dict(fault, ns=ns)
    statuses = [container_status(name, c, started, boots, fault, now) for c in containers]
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


def evicted(p, resource, at):
    """The pod as the kubelet leaves it after evicting it (kubernetes/kubernetes release-1.32,
    pkg/kubelet/eviction/eviction_manager.go `evictPod`: phase Failed, reason `Evicted`, a
    `DisruptionTarget` condition `TerminationByKubelet`; the message of
    pkg/kubelet/eviction/helpers.go `evictionMessage`), its containers killed and gone
    (pkg/kubelet/kubelet_pods.go: `ContainerStatusUnknown`, 137). Nothing collects it before
    the pod GC's `terminated-pod-gc-threshold` of 12,500 terminated pods
    (pkg/controller/podgc/gc_controller.go `gcTerminated`); its ReplicaSet has replaced it."""
    msg = (f"The node was low on resource: {resource}. Threshold quantity: 100Mi, available: 51200Ki. ")
    p = json.loads(json.dumps(p))
    p["metadata"]["name"] = p["metadata"]["name"].rsplit("-", 1)[0] + "-" + safe(p["metadata"]["name"] + "evicted", 5)
    p["status"].update(phase="Failed", reason="Evicted", message=msg, conditions=[
        {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
         "message": msg, "lastTransitionTime": at},
        {"type": "Ready", "status": "False", "reason": "PodFailed", "lastTransitionTime": at}])
    for c in p["status"]["containerStatuses"]:
        c.update(ready=False, started=False, state={"terminated": {
            "exitCode": 137, "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated"}})
    return p


def pods(objs, state, nodes, started):
    faults = state.get("pod_faults", {})
    evictions = state.get("evictions", {})
    now = datetime.datetime.now(datetime.timezone.utc)
    boots = sorted(b for b in state.get("boots", []) if parse(started) < parse(b) <= now)
    nodes = nodes or ["node"]
    out, i = [], 0

    def add(ns, workload, name, kind, owner, template, first):
        nonlocal i
        key = f"{ns}/{workload}"
        p = pod(ns, name, kind, owner, template, nodes[i % len(nodes)],
                faults.get(key) if first else None, started, boots, now)
        out.append(p)
        # Only a ReplicaSet leaves an evicted pod beside its replacement: the StatefulSet
        # controller deletes a failed pod and makes it again under the same name.
        if first and kind == "ReplicaSet" and key in evictions:
            e = evictions[key]
            e = e if isinstance(e, dict) else {"resource": e}
            at = e.get("at", started)
            # As it was when evicted: boots since then did not restart it.
            before = pod(ns, name, kind, owner, template, p["spec"]["nodeName"], None, started,
                         [b for b in boots if parse(b) < parse(at)], now)
            out.append(evicted(before, e["resource"], at))
        i += 1

    for rs in replicasets(objs, state.get("stale_replicasets")):
        m = rs["metadata"]
        workload = m["ownerReferences"][0]["name"]
        for n in range(rs["spec"]["replicas"]):
            add(m["namespace"], workload, f"{m['name']}-{safe(m['name'] + str(n), 5)}", "ReplicaSet",
                m["name"], rs["spec"]["template"], n == 0)
    for o in objs.values():
        if o.get("kind") != "StatefulSet":
            continue
        m, spec = meta(o), o.get("spec", {})
        ns = m.get("namespace", "default")
        for n in range(spec.get("replicas", 1)):
            add(ns, m["name"], f"{m['name']}-{n}", "StatefulSet", m["name"], spec.get("template", {}), n == 0)
    return sorted(out, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
