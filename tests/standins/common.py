"""Shared by the runner-side kubectl and helm stand-ins (tests only; see README.md here).

Every call is appended to $LAB_STANDIN_LOG as one JSON line (argv, KUBECONFIG, what the API
answered), and every call first reaches the cluster API through the kubeconfig's server — the
Jeeves tunnel — as the real tools do: no tunnel, no answer, the real tools' connection error.
Cluster state (objects, releases) lives in $LAB_STANDIN_STATE (JSON).

Every stand-in call is a process of its own, hundreds per lab test, so what each one loads is
kept to what it uses (docs/tests.md, "Where the time goes"): the stand-ins run as `python3 -S`
(no site-packages .pth files; PyYAML's directory is added below), PyYAML is loaded only by the
calls that parse YAML, and the API is reached over one TLS socket, not urllib."""
import json, os, re, site, sys

# `python3 -S`: site-packages without running its .pth files, for PyYAML (`yaml()`).
sys.path.extend(p for p in site.getsitepackages() if p not in sys.path)

LOG = os.environ.get("LAB_STANDIN_LOG", "")
STATE = os.environ.get("LAB_STANDIN_STATE", "")


def kubeconfig_path(argv):
    for i, a in enumerate(argv):
        if a == "--kubeconfig" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--kubeconfig="):
            return a.split("=", 1)[1]
    return os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config"))


def yaml():
    """PyYAML, loaded by the calls that parse or write YAML only."""
    import yaml as y
    return y


def load_all(text):
    """Every YAML document in `text`, parsed by libyaml where PyYAML was built with it (the
    CRDs Jeeves applies are hundreds of kilobytes)."""
    y = yaml()
    return y.load_all(text, Loader=getattr(y, "CSafeLoader", y.SafeLoader))


def load_one(text):
    """One YAML document (text or a file), as `load_all` parses it."""
    y = yaml()
    return y.load(text, Loader=getattr(y, "CSafeLoader", y.SafeLoader))


def api(path):
    """The kubeconfig's server URL and an SSL context that trusts its CA, as the tools build:
    with `certificate-authority-data`, that CA alone (kubernetes/client-go, `transport/transport.go`
    `rootCertPool`: a pool of the CA data replaces the system roots), else the system's."""
    import base64, ssl
    text = open(path).read()
    server = re.search(r"^\s*server:\s*(\S+)", text, re.M).group(1)
    ca = re.search(r"certificate-authority-data:\s*(\S+)", text)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(cadata=base64.b64decode(ca.group(1)).decode())
    else:
        ctx.load_default_certs()
    return server, ctx


class HttpError(Exception):
    pass


def request(server, ctx, method, api_path, body=None):
    """One HTTPS request to the API (`server` is https://host:port), its body as text; an
    answer other than 2xx raises HttpError, one that never comes an OSError after 10 s."""
    import socket
    hostport = server.split("//", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    head = f"{method} {api_path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n"
    data = json.dumps(body).encode() if body is not None else b""
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host.strip("[]")) as s:
            s.sendall(head.encode() + b"\r\n" + data)
            answer = b"".join(iter(lambda: s.recv(65536), b""))
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[1].startswith(b"2"):
        raise HttpError(f"{method} {api_path}: {status_line.decode(errors='replace')}")
    return payload.decode()


def get_raw(argv, api_path):
    server, ctx = api(kubeconfig_path(argv))
    return request(server, ctx, "GET", api_path)


def reach_api(tool, argv):
    """GET /version through the kubeconfig's server, verifying its CA; exits as the tools do."""
    path = kubeconfig_path(argv)
    try:
        server, ctx = api(path)
    except OSError:
        print(f"error: stat {path}: no such file or directory", file=sys.stderr)
        sys.exit(1)
    try:
        version = json.loads(request(server, ctx, "GET", "/version"))["gitVersion"]
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
    # Written beside it and renamed over it, under the lock `load` took (no tempfile import).
    tmp = f"{STATE}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
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
    return request(server, ctx, "POST", api_path, body)

