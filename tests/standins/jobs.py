"""The kubectl stand-in's Jobs (tests only; see README.md here): a Job is "run" when it is
created, as the Job controller and the kubelet would run its one pod — its container's
command and args executed here, with

- the environment resolved as the kubelet does: `value`, and `valueFrom.secretKeyRef` read from
  the stored Secret (base64-decoded); a missing Secret or key leaves the pod unstarted
  (CreateContainerConfigError), so the Job never finishes;
- each `volumeMounts` entry of a PersistentVolumeClaim standing as a directory,
  `<state dir>/standin-volumes/<namespace>/<claim>/`, kept between Jobs; an argument equal to
  the mountPath (or below it) is given that directory instead, since nothing here can mount;
- `$(NAME)` in command and args replaced by the container variable NAME, and a doubled `$` by
  one, as the kubelet does (kubernetes/kubernetes v1.32,
  `third_party/forked/golang/expansion/expand.go`; any other `$(…)` is left as written);
- the image standing as `tests/standins/image/` first on PATH (the stand-in mongodump and
  mongosh, whose servers are files in `standin-mongo/` beside the cluster state) before
  the host's /usr/bin:/bin (the host's /bin/sh and coreutils stand for the image's).

The pod's output (stdout and stderr, as `kubectl logs` shows them) is kept with the Job; exit
0 sets the Job's `Complete` condition, anything else `Failed` (backoffLimit 0). The pod itself is
stored as a Pod object, `Succeeded` or `Failed` (or `Pending`, unable to start), and stays with
its Job until the Job is deleted: nothing else removes a finished Job's pod."""
import base64, datetime, os, signal, subprocess, sys, tempfile, time

import common

IMAGE_BIN = os.path.join(os.path.dirname(os.path.realpath(__file__)), "image")


def expand(text, env):
    """The kubelet's expansion of command and args (expand.go: `$$` → `$`; `$(NAME)` → the
    variable when defined, else unchanged; an unclosed `$(` and any other `$x` as written)."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$" or i + 1 >= len(text):
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:close]
                out.append(env[name] if name in env else f"$({name})")
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def volumes_root():
    return os.path.join(os.path.dirname(os.path.abspath(common.STATE)) or ".", "standin-volumes")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def store_pod(objs, job, phase, state):
    """The Job's pod as the Job controller makes it and the kubelet reports it: named after the
    Job (generateName `<job>-`), the template's labels and the selector labels the API server
    adds to a Job's template (`batch.kubernetes.io/job-name`, `job-name`, and the controller
    uid ones: kubernetes/kubernetes release-1.32 pkg/registry/batch/job/strategy.go
    `generateSelector`), owned by the Job (pkg/controller/job/job_controller.go, through
    pkg/controller/controller_utils.go `GetPodFromTemplate`); its container `terminated`
    `Completed` (0) or `Error` (its exit code), or `waiting`."""
    m, tmpl = job["metadata"], job["spec"]["template"]
    import workloads
    name = f"{m['name']}-{workloads.safe(m['name'], 5)}"
    labels = dict((tmpl.get("metadata") or {}).get("labels") or {},
                  **{"batch.kubernetes.io/job-name": m["name"], "job-name": m["name"]})
    c = tmpl["spec"]["containers"][0]
    objs[f"Pod/{m['namespace']}/{name}"] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": m["namespace"], "labels": labels,
                     "creationTimestamp": job["status"]["startTime"],
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": m["name"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": dict(tmpl["spec"]),
        "status": {"phase": phase, "startTime": job["status"]["startTime"],
                   "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "ready": False,
                                          "restartCount": 0, "state": state}]}}


def remove_pods(objs, ns, job_name):
    """The garbage collector's part of deleting a Job: its pods go with it."""
    for k in [k for k, o in objs.items() if o["kind"] == "Pod" and o["metadata"].get("namespace") == ns and
              any(r.get("kind") == "Job" and r.get("name") == job_name
                  for r in o["metadata"].get("ownerReferences") or [])]:
        del objs[k]


def init_pid(unshare_pid):
    """The PID (in our namespace) of the process `unshare --fork` started: its only child."""
    path = f"/proc/{unshare_pid}/task/{unshare_pid}/children"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(path) as f:
            kids = f.read().split()
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise RuntimeError(f"unshare ({unshare_pid}) started no child")


def run_container(argv, env, cwd, out, deadline, grace):
    """The container's command as its PID 1: in a PID namespace of its own (`unshare --pid
    --fork`), so that, as in a container, the kernel drops any signal its init has no handler
    for, SIGKILL aside (pid_namespaces(7)), and everything in it dies with it. Past `deadline`
    seconds (activeDeadlineSeconds) the pod is deleted: the runtime sends SIGTERM to PID 1, and
    SIGKILL once the grace period (terminationGracePeriodSeconds, 30 by default) has passed
    (kubernetes/kubernetes v1.32, pkg/kubelet/kuberuntime/kuberuntime_container.go
    `killContainer`; containerd/runc signal the container's init). Returns the exit status, or
    None when the deadline was reached."""
    p = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", *argv], env=env, cwd=cwd,
                         stdout=out, stderr=subprocess.STDOUT)
    try:
        return p.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        pass
    pid1 = init_pid(p.pid)
    os.kill(pid1, signal.SIGTERM)
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(pid1, signal.SIGKILL)
        p.wait()
    return None


STANDIN_ENV = ("PATH", "HOME", "LAB_STANDIN_MONGODUMP_LOG", "LAB_STANDIN_MONGO_DIR", "LAB_STANDIN_PYTHON")


def container_env(objs, ns, c, base):
    """The container's environment as the kubelet resolves it, or the reason it cannot start."""
    env = dict(base)
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        secret = objs.get(f"Secret/{ns}/{ref['name']}")
        if secret is None or ref["key"] not in (secret.get("data") or {}):
            return None, (f'secret "{ref["name"]}" not found' if secret is None else
                          f'couldn\'t find key {ref["key"]} in Secret {ns}/{ref["name"]}')
        env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return env, None


def run(state, job):
    """The Job's pod: its init containers one after another, each to completion, then its
    containers, as the kubelet starts them (kubernetes/kubernetes v1.32,
    pkg/kubelet/kuberuntime/kuberuntime_manager.go `computePodActions`: the next init container
    only once the previous one succeeded; with restartPolicy Never a failed init container fails
    the pod and no container starts). The containers run one after another here too (the backup
    Job has one). `emptyDir` volumes are a directory per pod, shared by its containers."""
    objs = state["objects"]
    started = now()
    ns = job["metadata"]["namespace"]
    key = f"Job/{ns}/{job['metadata']['name']}"
    spec = job["spec"]["template"]["spec"]
    base = {"PATH": f"{IMAGE_BIN}:/usr/bin:/bin", "HOME": "/tmp",
            "LAB_STANDIN_MONGODUMP_LOG": os.path.join(os.path.dirname(volumes_root()), "standin-mongodump.jsonl"),
            "LAB_STANDIN_MONGO_DIR": os.path.join(os.path.dirname(volumes_root()), "standin-mongo"),
            "LAB_STANDIN_PYTHON": sys.executable}
    deadline = job["spec"].get("activeDeadlineSeconds")
    t0 = time.monotonic()
    logs = {}
    returncode = 0
    with tempfile.TemporaryDirectory() as pod_dir:
        for c in (spec.get("initContainers") or []) + spec["containers"]:
            env, why = container_env(objs, ns, c, base)
            if why is not None:
                job["status"] = {"active": 1, "startTime": started,
                                 "jeevesStandinPod": f"CreateContainerConfigError: {why}"}
                store_pod(objs, job, "Pending", {"waiting": {"reason": "CreateContainerConfigError", "message": why}})
                state.setdefault("logs", {})[key] = (
                    f'Error from server (BadRequest): container "{c["name"]}" in pod is waiting to start: CreateContainerConfigError\n')
                return
            mounts = {}
            for vm in c.get("volumeMounts", []):
                vol = next(v for v in spec.get("volumes", []) if v["name"] == vm["name"])
                if "emptyDir" in vol:
                    d = os.path.join(pod_dir, vm["name"])
                else:
                    d = os.path.join(volumes_root(), ns, vol["persistentVolumeClaim"]["claimName"])
                os.makedirs(d, exist_ok=True)
                mounts[vm["mountPath"].rstrip("/")] = d

            def mapped(arg):
                for path, d in mounts.items():
                    if arg == path or arg.startswith(path + "/"):
                        return d + arg[len(path):]
                return arg

            own = {k: v for k, v in env.items() if k not in STANDIN_ENV}
            argv = [mapped(expand(a, own)) for a in (c.get("command") or []) + (c.get("args") or [])]
            left = None if deadline is None else max(0.0, deadline - (time.monotonic() - t0))
            with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryFile() as out:
                returncode = run_container(argv, env, cwd, out, left, spec.get("terminationGracePeriodSeconds", 30))
                out.seek(0)
                logs[c["name"]] = out.read().decode(errors="replace")
            if returncode != 0:
                break
    log = "".join(logs.values())
    finished = now()
    if returncode is None:
        # The Job controller fails a Job active past activeDeadlineSeconds and deletes its
        # active pods (kubernetes/kubernetes v1.32, pkg/controller/job/job_controller.go:
        # `pastActiveDeadline`, condition Failed, reason `DeadlineExceeded`, "Job was active
        # longer than specified deadline"; `deleteActivePods`): the pod, and its log, are gone.
        job["status"] = {"startTime": started, "failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
             "message": "Job was active longer than specified deadline", "lastTransitionTime": finished}]}
        # What the pod printed, for a test to read (no kubectl shows it).
        state.setdefault("deleted_pod_logs", {})[key] = log
        return
    state.setdefault("logs", {})[key] = log
    state.setdefault("container_logs", {})[key] = logs
    if returncode == 0:
        job["status"] = {"startTime": started, "completionTime": finished, "succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": finished}]}
    else:
        job["status"] = {"startTime": started, "failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": finished}]}
    store_pod(objs, job, "Succeeded" if returncode == 0 else "Failed", {"terminated": {
        "exitCode": returncode, "reason": "Completed" if returncode == 0 else "Error",
        "startedAt": started, "finishedAt": finished}})
