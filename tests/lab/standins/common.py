"""State and helpers shared by the MicroK8s stand-ins (lab only): /var/snap/microk8s is per lab
host. Every behaviour here is MicroK8s 1.32's; README.md beside this file cites the source."""
# Each call of a stand-in is a new Python process (-S: no site-packages, whose .pth files alone
# cost ~55 ms of CPU): modules only some commands need are imported where they are used.
import contextlib, fcntl, hashlib, json, os, re, socket, time

SNAP = "/var/snap/microk8s"
SNAP_DATA = f"{SNAP}/current"
SNAP_COMMON = f"{SNAP}/common"
STATE = f"{SNAP_COMMON}/jeeves-standin.json"
CERTS = f"{SNAP_DATA}/certs"
CREDENTIALS = f"{SNAP_DATA}/credentials"
TOKENS = f"{CREDENTIALS}/cluster-tokens.txt"
PERSISTENT_TOKENS = f"{CREDENTIALS}/persistent-cluster-tokens.txt"
CLIENT_CONFIG = f"{CREDENTIALS}/client.config"
# Until when (epoch seconds) kubelite, and with it the API server on :16443, is restarting.
KUBELITE_RESTART = f"{SNAP_COMMON}/lab-kubelite-restarting-until"
AGENT_PORT = 25000
API_PORT = 16443
TOKEN_MIN_LEN = 32        # scripts/wrappers/common/cluster/utils.py TOKEN_ΜΙΝ_LEN
FINGERPRINT_MIN_LEN = 12  # scripts/wrappers/common/cluster/utils.py FINGERPRINT_MIN_LEN
# What "latest/…" installs in the lab (a stand-in simplification: no store to ask).
LATEST_TRACK = "1.32"

# canonical/microk8s-core-addons@1.32 addons.yaml (amd64, classic): name, description, version.
# `microk8s status` lists them sorted by (repository, name) (common/utils.py get_available_addons).
CORE_ADDONS = [
    ("cert-manager", "Cloud native certificate management", "1.8.0"),
    ("cis-hardening", "Apply CIS K8s hardening", "1.0.0"),
    ("community", "The community addons repository", ""),
    ("dashboard", "The Kubernetes dashboard", "2.6.0"),
    ("dns", "CoreDNS", "1.10.1"),
    ("gpu", "Alias to nvidia add-on", "22.9.1"),
    ("ha-cluster", "Configure high availability on the current node", "0.1.0"),
    ("helm", "Helm - the package manager for Kubernetes", "3.9.1"),
    ("helm3", "Helm 3 - the package manager for Kubernetes", "3.9.1"),
    ("host-access", "Allow Pods connecting to Host services smoothly", "1.0.0"),
    ("hostpath-storage", "Storage class; allocates storage from host directory", "1.4.2"),
    ("ingress", "Ingress controller for external access", "1.8.0"),
    ("kube-ovn", "An advanced network fabric for Kubernetes", "1.10.0-alpha1"),
    ("mayastor", "OpenEBS MayaStor", "2.0.0-microk8s-1"),
    ("metallb", "Loadbalancer for your Kubernetes cluster", "0.13.3"),
    ("metrics-server", "K8s Metrics Server for API access to service metrics", "0.6.3"),
    ("minio", "MinIO object storage", "4.5.1"),
    ("nvidia", "NVIDIA hardware (GPU and network) support", "gpu=22.9.1/network=23.7.0/microk8s-1"),
    ("observability", "A lightweight observability stack for logs, traces and metrics", "0.57.0"),
    ("prometheus", "Prometheus operator for monitoring and logging", "v0.8.0"),
    ("rbac", "Role-Based Access Control for authorisation", ""),
    ("registry", "Private image registry exposed on localhost:32000", "2.8.1"),
    ("rook-ceph", "Distributed Ceph storage using Rook", "1.11.9"),
    ("storage", "Alias to hostpath-storage add-on, deprecated", "1.4.0"),
]
ADDONS = [a[0] for a in CORE_ADDONS]
# Enabled on a fresh install: dns by the default launch configuration (microk8s.default.yaml),
# ha-cluster by its lock (snap/hooks/install), helm and helm3 by their check_status file
# (${SNAP}/bin/helm, always present).
DEFAULT_ADDONS = ["dns", "ha-cluster", "helm", "helm3"]

KUBE_SYSTEM_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.String's alphabet


# ---- state ---------------------------------------------------------------------------------

def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save(state):
    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    tmp = f"{STATE}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, STATE)


@contextlib.contextmanager
def locked():
    """A load-modify-save of the state, exclusive across the stand-ins' processes."""
    os.makedirs(SNAP_COMMON, exist_ok=True)
    with open(f"{STATE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update(fn):
    """Applies fn to the state under the lock and saves it; returns fn's result."""
    with locked():
        state = load()
        out = fn(state)
        save(state)
        return out


def now():
    return int(time.time())


def host_ip():
    """The address of eth0 (the lab bridge), as MicroK8s' get_default_ip finds it."""
    return socket.gethostbyname(socket.gethostname())


def hostname():
    return socket.gethostname().lower()


def k8s_suffix(n):
    import secrets
    return "".join(secrets.choice(KUBE_SYSTEM_CHARS) for _ in range(n))


# ---- channels and versions -----------------------------------------------------------------

def normalize_channel(channel):
    """snapd's reading of --channel: "1.32" → "1.32/stable", "edge" → "latest/edge"."""
    risks = ("stable", "candidate", "beta", "edge")
    parts = channel.split("/")
    if len(parts) == 1:
        return f"latest/{parts[0]}" if parts[0] in risks else f"{parts[0]}/stable"
    return "/".join(parts)


def channel_available(channel):
    parts = channel.split("/")
    return (len(parts) in (2, 3) and parts[1] in ("stable", "candidate", "beta", "edge")
            and re.fullmatch(r"latest|1\.(1[89]|2\d|3[0-3])(-strict|-eksd)?", parts[0]) is not None)


def track_version(channel):
    """Kubernetes minor of a channel's track: "1.32/stable" → "1.32" (latest: LATEST_TRACK)."""
    m = re.match(r"(\d+\.\d+)", channel)
    return m.group(1) if m else LATEST_TRACK


def snap_version(channel):
    return f"v{track_version(channel)}.0"


def snap_revision(channel):
    minor = int(track_version(channel).split(".")[1])
    return str(7000 + minor * 10)


# ---- certificates (snap/hooks/install: produce_certs, create_user_certs_and_configs) ----------

def _openssl(*args, stdin=None):
    import subprocess
    return subprocess.run(["openssl", *args], input=stdin, check=True, capture_output=True,
                          text=True).stdout


def _rsa_key(path):
    """A 2048-bit RSA key at `path`, as `openssl genrsa -out path 2048` writes it (0600): taken
    from the lab's pool (tests/lab/lab make_rsa_pool, each made by that same command) where the
    lab gave one, else made here."""
    import random, shutil
    try:
        pool = open("/var/snap/.lab-rsa-pool").read().strip()
        keys = sorted(os.listdir(pool))
    except OSError:
        keys = []
    if not keys:
        _openssl("genrsa", "-out", path, "2048")
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(f"{pool}/{random.choice(keys)}", "rb") as key:
        shutil.copyfileobj(key, out)


def produce_certs():
    """ca.crt (CN=10.152.183.1), server.crt signed by it with csr.conf's SANs and this host's
    IPs, client.crt (CN=admin, O=system:masters) signed by it, and the x509 client.config."""
    import subprocess
    os.makedirs(CERTS, exist_ok=True)
    os.makedirs(CREDENTIALS, exist_ok=True)
    c = lambda name: f"{CERTS}/{name}"
    if not os.path.exists(c("ca.crt")):
        _rsa_key(c("ca.key"))
        _openssl("req", "-x509", "-new", "-sha256", "-nodes", "-days", "3650", "-key", c("ca.key"),
                 "-subj", "/CN=10.152.183.1",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                 "-out", c("ca.crt"))
    if not os.path.exists(c("server.crt")):
        ip = host_ip()
        conf = c("csr.conf")
        with open(conf, "w") as f:
            f.write(f"""[ req ]
default_bits = 2048
prompt = no
default_md = sha256
req_extensions = req_ext
distinguished_name = dn

[ dn ]
C = GB
ST = Canonical
L = Canonical
O = Canonical
OU = Canonical
CN = 127.0.0.1

[ req_ext ]
subjectAltName = @alt_names

[ alt_names ]
DNS.1 = kubernetes
DNS.2 = kubernetes.default
DNS.3 = kubernetes.default.svc
DNS.4 = kubernetes.default.svc.cluster
DNS.5 = kubernetes.default.svc.cluster.local
IP.1 = 127.0.0.1
IP.2 = 10.152.183.1
IP.3 = {ip}

[ v3_ext ]
authorityKeyIdentifier=keyid,issuer:always
basicConstraints=CA:FALSE
keyUsage=keyEncipherment,dataEncipherment,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=@alt_names
""")
        _rsa_key(c("server.key"))
        _openssl("req", "-new", "-sha256", "-key", c("server.key"), "-out", c("server.csr"), "-config", conf)
        _openssl("x509", "-req", "-sha256", "-in", c("server.csr"), "-CA", c("ca.crt"), "-CAkey", c("ca.key"),
                 "-CAcreateserial", "-out", c("server.crt"), "-days", "365", "-extensions", "v3_ext",
                 "-extfile", conf)
    if not os.path.exists(c("client.crt")):
        _rsa_key(c("client.key"))
        csr = _openssl("req", "-new", "-sha256", "-subj", "/CN=admin/O=system:masters", "-key", c("client.key"))
        ext = c("client.ext")
        with open(ext, "w") as f:
            f.write("authorityKeyIdentifier=keyid,issuer\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
        crt = _openssl("x509", "-req", "-sha256", "-CA", c("ca.crt"), "-CAkey", c("ca.key"),
                       "-CAcreateserial", "-days", "3650", "-extfile", ext, stdin=csr)
        with open(c("client.crt"), "w") as f:
            f.write(crt)
    if not os.path.exists(CLIENT_CONFIG):
        b64 = lambda name: subprocess.run(["base64", "-w", "0", c(name)], check=True,
                                          capture_output=True, text=True).stdout
        # microk8s-resources/client-x509.config.template as create_kubeconfig_x509 fills it.
        with open(CLIENT_CONFIG, "w") as f:
            f.write(f"""apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {b64("ca.crt")}
    server: https://127.0.0.1:{API_PORT}
  name: microk8s-cluster
contexts:
- context:
    cluster: microk8s-cluster
    user: admin
  name: microk8s
current-context: microk8s
kind: Config
preferences: {{}}
users:
- name: admin
  user:
    client-certificate-data: {b64("client.crt")}
    client-key-data: {b64("client.key")}
""")
        os.chmod(CLIENT_CONFIG, 0o660)


def check_value():
    """utils.sh server_cert_check: the first 12 hex digits of server.crt's DER SHA-256."""
    import ssl
    with open(f"{CERTS}/server.crt") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()[:12]


def server_context():
    """TLS as the cluster agent and kube-apiserver serve it (server.crt). A client certificate
    is verified against the CA when one is presented, and not required (anonymous /version)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{CERTS}/server.crt", f"{CERTS}/server.key")
    ctx.load_verify_locations(f"{CERTS}/ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


# ---- kubelite restarts ---------------------------------------------------------------------

def restart_seconds():
    """How long a kubelite restart keeps the API server away: LAB_KUBELITE_RESTART_SECONDS, else
    /var/snap/.lab-kubelite-restart-seconds (the host's own, writable from the lab directory
    hosts/NAME/var-snap/), else 3."""
    v = os.environ.get("LAB_KUBELITE_RESTART_SECONDS")
    if v is None:
        try:
            v = open("/var/snap/.lab-kubelite-restart-seconds").read().strip()
        except OSError:
            v = "3"
    try:
        return max(0.0, float(v))
    except ValueError:
        return 3.0


def api_up(timeout=1.0):
    try:
        socket.create_connection(("127.0.0.1", API_PORT), timeout=timeout).close()
        return True
    except OSError:
        return False


def restart_kubelite():
    """`snapctl restart microk8s.daemon-kubelite`: returns once the old process is gone (the
    daemon stand-in closes :16443), not once the new API server answers."""
    until = time.time() + restart_seconds()
    os.makedirs(SNAP_COMMON, exist_ok=True)
    with open(KUBELITE_RESTART + ".tmp", "w") as f:
        f.write(f"{until}\n")
    os.replace(KUBELITE_RESTART + ".tmp", KUBELITE_RESTART)
    deadline = time.time() + 3
    while api_up(0.2) and time.time() < deadline and time.time() < until:
        time.sleep(0.05)


def kubelite_restarting():
    try:
        return time.time() < float(open(KUBELITE_RESTART).read())
    except (OSError, ValueError):
        return False


def wait_for_ready(timeout):
    """common/utils.py wait_for_ready: the cluster check every 2 s; timeout 0 waits forever."""
    end = time.time() + timeout
    while True:
        if api_up():
            return True
        if timeout and time.time() > end:
            return False
        time.sleep(2)


# ---- services (snapd's view of the snap's daemons) and node heartbeats ---------------------

# Whether the snap's kubelite service is stopped (`snap stop microk8s[.daemon-kubelite]`), and
# whether it starts at boot; kept outside the snap's data so that the boot hook reads it.
SERVICES = f"{SNAP_COMMON}/lab-services.json"
# The daemon stand-in's pid, for `snap remove` (which stops the snap's services first).
DAEMON_PID = "/var/snap/.lab-microk8s-daemon.pid"


def services():
    """{"kubelite": {"active": bool, "enabled": bool}}: active and enabled unless stopped."""
    try:
        with open(SERVICES) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"kubelite": {"active": True, "enabled": True}}


def save_services(svc):
    os.makedirs(SNAP_COMMON, exist_ok=True)
    with open(SERVICES + ".tmp", "w") as f:
        json.dump(svc, f)
    os.replace(SERVICES + ".tmp", SERVICES)


def kubelite_running():
    """kubelite (the kubelet and, on a control plane, the API server) runs: its service is
    active and no restart is under way."""
    return services()["kubelite"]["active"] and not kubelite_restarting()


def _knob(name, default):
    try:
        return max(1.0, float(open(f"/var/snap/.lab-{name}").read().strip()))
    except (OSError, ValueError):
        return default


def lease_seconds():
    """The kubelet's nodeLeaseDurationSeconds: 40 (kubernetes release-1.32
    pkg/kubelet/apis/config/v1beta1/defaults.go); lab knob /var/snap/.lab-node-lease-seconds, as
    the kubelet's --node-lease-duration-seconds would set it."""
    return _knob("node-lease-seconds", 40.0)


def grace_seconds():
    """kube-controller-manager's --node-monitor-grace-period: 50 s in 1.32 (kubernetes
    pkg/controller/nodelifecycle/config/v1alpha1/defaults.go, raised from 40 s by
    kubernetes/kubernetes#126287); lab knob /var/snap/.lab-node-monitor-grace-seconds."""
    return _knob("node-monitor-grace-seconds", 50.0)


# The kubelet posts its node status when it changes or every nodeStatusReportFrequency, 5 min
# (pkg/kubelet/apis/config/v1beta1/defaults.go; pkg/kubelet/kubelet_node_status.go
# tryUpdateNodeStatus), and renews its Lease in between.
STATUS_REPORT_SECONDS = 300


def heartbeat(node, t, status, seconds):
    """What the API server records when a kubelet renews its Lease of `seconds` (and, with
    `status`, posts its node status). A node the node lifecycle controller had marked Unknown turns
    Ready at once, with a new transition time."""
    if status:
        if not node_ready(node, t):
            node["ready_since"] = t
        node["status_posted"] = t
    node.setdefault("ready_since", t)
    node["lease"] = t
    node["lease_seconds"] = int(seconds)


def probe_time(node):
    """The node lifecycle controller's probeTimestamp: the last time it saw the Lease renewed or
    the status posted (pkg/controller/nodelifecycle/node_lifecycle_controller.go
    tryUpdateNodeHealth). A node that never did either counts from its creation."""
    return max(node.get("lease", 0), node.get("status_posted", 0)) or node.get("created", 0)


def node_ready(node, t):
    """Ready as the node lifecycle controller leaves it: Unknown once `t` is past the probe time
    plus the grace period (tryUpdateNodeHealth, `nc.now().After(probeTimestamp.Add(gracePeriod))`)."""
    return t <= probe_time(node) + grace_seconds()


def start_daemon():
    """The snap's services (the daemon stand-in), as `snap install` and systemd at boot start them."""
    import subprocess
    here = os.path.dirname(os.path.realpath(__file__))
    subprocess.Popen([os.path.join(here, "microk8s-daemon")], stdin=subprocess.DEVNULL,
                     stdout=open(f"{SNAP_COMMON}/daemon.log", "a"), stderr=subprocess.STDOUT,
                     start_new_session=True)


def daemon_running():
    try:
        pid = int(open(DAEMON_PID).read())
        return b"microk8s-daemon" in open(f"/proc/{pid}/cmdline", "rb").read()
    except (OSError, ValueError):
        return False


# ---- the datastore (dqlite) ----------------------------------------------------------------
# Roles as go-dqlite's app manages them (canonical/go-dqlite app/roles.go RolesChanges.Adjust,
# app/options.go defaultOptions: 3 voters, 3 stand-bys); the cluster's members and their roles
# are the first controller's state["dqlite"] (README, "Control-plane joins").
DQLITE_PORT = 19001
VOTERS, STANDBYS, MIN_VOTERS = 3, 3, 3


def dqlite_members(state):
    """The raft configuration: [{"address", "role"}], the first controller (the leader) first."""
    return state.setdefault("dqlite", [{"address": f"{host_ip()}:{DQLITE_PORT}", "role": "voter"}])


def dqlite_online(state, member, t):
    """Whether the leader reaches a member: itself always; another while the daemon on it (its
    kubelet stand-in) renewed its node's Lease within the Lease's duration (go-dqlite asks each
    node for its metadata; a powered-off host or a stopped snap answers nothing)."""
    ip = member["address"].rsplit(":", 1)[0]
    if ip == host_ip():
        return True
    node = next((n for n in state["nodes"] if n["ip"] == ip), None)
    return node is not None and t <= node.get("lease", 0) + node.get("lease_seconds", 40)


def dqlite_adjust(state, t):
    """RolesChanges.Adjust, applied until it changes nothing (the leader runs it every 30 s,
    RolesAdjustmentFrequency; a node that joins asks for its promotion at once): computed when
    read, as Node readiness is. Failure domains and weights are not modelled (all equal)."""
    members = dqlite_members(state)
    leader = members[0]["address"]
    for _ in range(2 * len(members) + 2):
        online = {m["address"]: dqlite_online(state, m, t) for m in members}

        def pick(role, up):
            return [m for m in members if m["role"] == role and online[m["address"]] == up]
        if len(members) == 1:
            return members
        if len(members) < MIN_VOTERS:
            extra = [m for m in members if m["address"] != leader and m["role"] == "voter"]
            if not extra:
                return members
            extra[0]["role"] = "spare"
            continue
        voters_up, standbys_up = pick("voter", True), pick("standby", True)
        voters_down, standbys_down = pick("voter", False), pick("standby", False)
        if not voters_down and len(voters_up) == VOTERS and not standbys_down and len(standbys_up) == STANDBYS:
            return members
        if len(voters_up) < VOTERS:
            candidates = standbys_up + pick("spare", True)
            if not candidates:
                return members
            candidates[0]["role"] = "voter"
        elif len(voters_up) > VOTERS:
            next(m for m in voters_up if m["address"] != leader)["role"] = "spare"
        elif voters_down:
            voters_down[0]["role"] = "spare"
        elif len(standbys_up) < STANDBYS:
            spares = pick("spare", True)
            if not spares:
                return members
            spares[0]["role"] = "standby"
        elif len(standbys_up) > STANDBYS:
            next(m for m in standbys_up if m["address"] != leader)["role"] = "spare"
        elif standbys_down:
            standbys_down[0]["role"] = "spare"
        else:
            return members
    return members
