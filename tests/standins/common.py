"""Shared by the runner-side kubectl and helm stand-ins (tests only; see README.md here).

Every call is appended to $LAB_STANDIN_LOG as one JSON line (argv, KUBECONFIG, what the API
answered), and every call first reaches the cluster API through the kubeconfig's server — the
Jeeves tunnel — as the real tools do: no tunnel, no answer, the real tools' connection error.
Cluster state (objects, releases) lives in $LAB_STANDIN_STATE (JSON)."""
import base64, json, os, re, ssl, sys, tempfile, urllib.request

LOG = os.environ.get("LAB_STANDIN_LOG", "")
STATE = os.environ.get("LAB_STANDIN_STATE", "")


def kubeconfig_path(argv):
    for i, a in enumerate(argv):
        if a == "--kubeconfig" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--kubeconfig="):
            return a.split("=", 1)[1]
    return os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config"))


def api(path):
    """The kubeconfig's server URL and an SSL context that trusts its CA, as the tools build."""
    text = open(path).read()
    server = re.search(r"^\s*server:\s*(\S+)", text, re.M).group(1)
    ca = re.search(r"certificate-authority-data:\s*(\S+)", text)
    ctx = ssl.create_default_context()
    if ca:
        ctx.load_verify_locations(cadata=base64.b64decode(ca.group(1)).decode())
    return server, ctx


def get_raw(argv, api_path):
    server, ctx = api(kubeconfig_path(argv))
    with urllib.request.urlopen(server + api_path, context=ctx, timeout=10) as r:
        return r.read().decode()


def reach_api(tool, argv):
    """GET /version through the kubeconfig's server, verifying its CA; exits as the tools do."""
    path = kubeconfig_path(argv)
    try:
        server, ctx = api(path)
    except OSError:
        print(f"error: stat {path}: no such file or directory", file=sys.stderr)
        sys.exit(1)
    try:
        with urllib.request.urlopen(server + "/version", context=ctx, timeout=10) as r:
            version = json.load(r)["gitVersion"]
    except Exception as e:
        hostport = server.split("//", 1)[1]
        if tool == "kubectl":
            print(f"The connection to the server {hostport} was refused - did you specify the right host or port?", file=sys.stderr)
        else:
            print(f"Error: Kubernetes cluster unreachable: Get \"{server}/version\": dial tcp {hostport}: connect: connection refused", file=sys.stderr)
        record(tool, argv, path, None, str(e))
        sys.exit(1)
    record(tool, argv, path, version, None)
    return version


def record(tool, argv, kubeconfig, version, error):
    if not LOG:
        return
    with open(LOG, "a") as f:
        f.write(json.dumps({"tool": tool, "argv": argv, "kubeconfig_arg": kubeconfig,
                            "KUBECONFIG": os.environ.get("KUBECONFIG"), "server_version": version,
                            "error": error}) + "\n")


_lock = None


def load():
    """The cluster state, read under an exclusive lock held until this process exits: the
    stand-ins' calls run at once (Jeeves' probes), and each writes the state back whole, so
    without it one call's write (the operator's reconcile) is lost under another's. The API
    server serialises writes to one object the same way (resourceVersion)."""
    global _lock
    if STATE and _lock is None:
        import fcntl
        _lock = open(STATE + ".lock", "a")
        fcntl.flock(_lock, fcntl.LOCK_EX)
    try:
        return json.load(open(STATE))
    except (OSError, ValueError):
        return {"objects": {}, "releases": {}}


def unlock():
    """Lets the other calls at the state before a long wait that reads and writes nothing more
    (`kubectl wait` sitting out its timeout)."""
    global _lock
    if _lock is not None:
        _lock.close()
        _lock = None


def save(state):
    if not STATE:
        return
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(STATE) or ".")
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    os.replace(tmp, STATE)


def opt(argv, *names, default=None):
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return default


def post_raw(argv, api_path, body):
    """POST a JSON body to the API through the kubeconfig's server (lab-only paths)."""
    server, ctx = api(kubeconfig_path(argv))
    req = urllib.request.Request(server + api_path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return r.read().decode()
