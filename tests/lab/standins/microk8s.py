#!/usr/bin/env -S python3 -S
"""Stand-in for the `microk8s` command (lab only), MicroK8s 1.32's output and exit codes.
See README.md beside this file for what each behaviour follows upstream."""
# Each call of a stand-in is a new Python process (-S: no site-packages, whose .pth files alone
# cost ~55 ms of CPU): modules only some commands need are imported where they are used.
import json, os, re, sys, time
from datetime import datetime, timezone
sys.stdout.reconfigure(line_buffering=True)  # stdout and stderr lines in the order written, as Go's kubectl
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import common

NOT_RUNNING = "microk8s is not running. Use microk8s inspect for a deeper inspection."
REFUSED = (f"The connection to the server 127.0.0.1:{common.API_PORT} was refused - "
           "did you specify the right host or port?")


def node_msg(what):
    return f"This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s {what} on the master."


def out(msg="", code=None):
    print(msg)
    if code is not None:
        sys.exit(code)


def err(msg, code=1):
    sys.stdout.flush()
    print(msg, file=sys.stderr)
    sys.exit(code)


state = common.load()
if state is None:
    # Without the snap there is no microk8s command at all.
    err("microk8s: command not found", 127)
args = sys.argv[1:]
cmd, rest = (args[0], args[1:]) if args else ("help", [])
is_worker = state["role"] == "worker"


def opt(*names, default=None):
    for i, a in enumerate(rest):
        for name in names:
            if a == name and i + 1 < len(rest):
                return rest[i + 1]
            if a.startswith(name + "=") and name.startswith("--"):
                return a.split("=", 1)[1]
    return default


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- status (scripts/wrappers/status.py) ---------------------------------------------------

def voters():
    """get_dqlite_info: `dqlite … .cluster`, the raft configuration as the leader has it, each
    member's role. The leader is the first controller (README, "Control-plane joins"); a node that
    joined it as a full node asks it (`/lab/dqlite`, lab only), and gets nothing when it cannot
    (get_dqlite_info returns [] once its retries are spent; the stand-in does not wait them)."""
    if state["role"] == "control-plane":
        import http.client, ssl
        conn = http.client.HTTPSConnection(f"{state['controller']}:{common.AGENT_PORT}", timeout=4,
                                           context=ssl._create_unverified_context())
        try:
            conn.request("GET", "/lab/dqlite")
            resp = conn.getresponse()
            members = json.loads(resp.read()) if resp.status == 200 else []
        except (OSError, ValueError, http.client.HTTPException):
            members = []
    else:
        members = common.update(lambda s: [dict(m) for m in common.dqlite_adjust(s, time.time())])
    return [(m["address"], m["role"]) for m in members]


def status():
    if is_worker:
        # microk8s-status.wrapper, before status.py runs.
        out("This MicroK8s deployment is acting as a node in a cluster.\nPlease use the control plane node.", 0)
    timeout = int(opt("--timeout", "-t", default="0"))
    fmt = opt("--format", default="pretty")
    if fmt not in ("pretty", "yaml", "short"):
        err("usage: microk8s status [-h] [--format {pretty,yaml,short}] [-w] [-t TIMEOUT] [-a ADDON] [--yaml]\n"
            f"microk8s status: error: argument --format: invalid choice: '{fmt}' (choose from 'pretty', 'yaml', 'short')", 2)
    addon = opt("--addon", "-a", default="all")
    ready = common.wait_for_ready(timeout) if ("--wait-ready" in rest or "-w" in rest) else common.api_up()
    listed = [a for a in common.CORE_ADDONS if addon == "all" or addon in (a[0], f"core/{a[0]}")]
    enabled = [a for a in listed if ready and a[0] in state["addons"]]
    disabled = [a for a in listed if ready and a[0] not in state["addons"]]
    if addon != "all":
        out("enabled" if enabled else "disabled")
    elif fmt == "yaml":
        out(f"microk8s:\n  running: {ready}\nhigh-availability:\n  enabled: True\n  nodes:")
        for address, role in voters():
            out(f"    - address: {address}\n      role: {role}")
        if ready:
            out("addons:")
            for (name, desc, version), st in [(a, "enabled") for a in enabled] + [(a, "disabled") for a in disabled]:
                out(f"  - name: {name}\n    repository: core\n    description: {desc}\n    version: {version}\n    status: {st}")
        else:
            out(f"  message: {NOT_RUNNING}")
    elif not ready:
        out(NOT_RUNNING)
    elif fmt == "short":
        out("microk8s is running\naddons:")
        for name, _, _ in enabled:
            out(f"core/{name}: enabled")
        for name, _, _ in disabled:
            out(f"core/{name}: disabled")
    else:
        vs = voters()
        out("microk8s is running")
        out(f"high-availability: {'yes' if sum(r == 'voter' for _, r in vs) > 2 else 'no'}")
        out(f"  datastore master nodes: {' '.join(a for a, r in vs if r == 'voter')}")
        out(f"  datastore standby nodes: {' '.join(a for a, r in vs if r == 'standby') or 'none'}")
        out("addons:")
        for title, group in (("enabled", enabled), ("disabled", disabled)):
            if group:
                out(f"  {title}:")
                for name, desc, _ in group:
                    out("{:>3} {:<20} # ({}) {}".format("", name, "core", desc))
    sys.exit(0 if ready else 1)


# ---- enable (scripts/wrappers/enable.py, common/utils.py xable, core addons' enable scripts) --

APPLIED = {
    "dns": ["serviceaccount/coredns created", "configmap/coredns created", "deployment.apps/coredns created",
            "service/kube-dns created", "clusterrole.rbac.authorization.k8s.io/coredns created",
            "clusterrolebinding.rbac.authorization.k8s.io/coredns created"],
    "hostpath-storage": ["deployment.apps/hostpath-provisioner created",
                         "storageclass.storage.k8s.io/microk8s-hostpath created",
                         "serviceaccount/microk8s-hostpath created",
                         "clusterrole.rbac.authorization.k8s.io/microk8s-hostpath created",
                         "clusterrolebinding.rbac.authorization.k8s.io/microk8s-hostpath created"],
}


def controller_pod(app):
    return {"namespace": "kube-system", "name": f"{app}-{common.k8s_suffix(10)}-{common.k8s_suffix(5)}",
            "node": common.hostname(), "owner": "ReplicaSet", "emptydir": False, "terminate_seconds": 1}


def run_enable_script(addon):
    """What the addon's enable script prints and does; True when it restarted kubelite."""
    if addon == "rbac":
        # addons/rbac/enable: --authorization-mode=RBAC,Node, then restart_service apiserver
        # (snapctl restart microk8s.daemon-kubelite), without waiting for the API server.
        out("Enabling RBAC\nReconfiguring apiserver\nRestarting apiserver")
        sys.stdout.flush()
        common.restart_kubelite()
        out("RBAC is enabled")
    elif addon == "dns":
        out("Enabling DNS\nNo valid resolv.conf file could be found\n"
            "Falling back to 8.8.8.8 8.8.4.4 as upstream nameservers\nApplying manifest")
        out("\n".join(APPLIED["dns"]))
        out("CoreDNS service deployed with IP address 10.152.183.10\nDNS is enabled")
    elif addon in ("hostpath-storage", "storage"):
        out("Enabling default storage class.\nWARNING: Hostpath storage is not suitable for production environments.\n"
            "         A hostpath volume can grow beyond the size limit set in the volume claim manifest.\n")
        out("\n".join(APPLIED["hostpath-storage"]))
        out("Storage will be available soon.")
    elif addon == "observability":
        # addons/observability/enable restarts scheduler, controller-manager and proxy: kubelite.
        out(f"Enabling {addon}")
        sys.stdout.flush()
        common.restart_kubelite()
        out(f"{addon} is enabled (lab stand-in: the addon's own output is not modelled)")
    else:
        out(f"Enabling {addon}\n{addon} is enabled (lab stand-in: the addon's own output is not modelled)")


def enable():
    if is_worker:
        # common/utils.py is_cluster_locked.
        out("This MicroK8s deployment is acting as a node in a cluster.\nPlease use the master node.", 1)
    if not rest:
        err("Usage: microk8s enable [OPTIONS] ADDONS...\nTry 'microk8s enable -h' for help.\n\n"
            "Error: Missing argument 'ADDONS...'.", 2)
    common.wait_for_ready(30)
    if not common.api_up():
        # get_status runs kubectl get all,ingress (die=False): the failure is raised.
        err("Traceback (most recent call last):\n  ...\nsubprocess.CalledProcessError: Command "
            "'('/snap/microk8s/current/kubectl', '--kubeconfig=/var/snap/microk8s/current/credentials/client.config', "
            "'get', 'all,ingress', '--all-namespaces')' returned non-zero exit status 1.")
    names = [a.split(":")[0] for a in rest]
    available = common.ADDONS + [f"core/{a}" for a in common.ADDONS]
    if set(names) < set(available):
        wanted = names
    else:
        wanted = names[:1]  # one addon with unix-style arguments after it
    parsed = []
    for name in wanted:
        parts = name.split("/")
        if len(parts) == 2:
            parsed.append((parts[0], parts[1]))
        elif name in common.ADDONS:
            print(f"Infer repository core for addon {name}", file=sys.stderr)
            parsed.append(("core", name))
        else:
            err(f"Addon {name} was not found in any repository")
    if len(parsed) > 1:
        out("WARNING: Do not enable or disable multiple addons in one command.\n"
            "         This form of chained operations on addons will be DEPRECATED in the future.\n"
            "         Please, enable one addon at a time: 'microk8s enable <addon>'")
    for repo, addon in parsed:
        if repo != "core" or addon not in common.ADDONS:
            out(f"Addon {repo}/{addon} not found")
            continue
        if addon in common.load()["addons"]:
            out(f"Addon {repo}/{addon} is already enabled")
            continue
        common.wait_for_ready(30)
        run_enable_script(addon)

        def mark(s):
            s["addons"].append(addon)
            if addon == "dns":
                s["pods"].append(controller_pod("coredns"))
            if addon in ("hostpath-storage", "storage"):
                s["pods"].append(controller_pod("hostpath-provisioner"))
        common.update(mark)
        # xable waits again once the script is done (30 s at most, the result ignored).
        common.wait_for_ready(30)


# ---- add-node (scripts/wrappers/add_token.py) ----------------------------------------------

def add_node():
    if is_worker:
        out(node_msg("add-node"), 1)
    usage = ("usage: microk8s add-node [-h] [--token-ttl TOKEN_TTL] [--token TOKEN]\n"
             "                         [--format {pretty,short,token,token-check,json,yaml}]")
    raw_ttl = opt("--token-ttl", "-l", default="-1")
    try:
        ttl = int(raw_ttl)
    except ValueError:
        err(f"{usage}\nmicrok8s add-node: error: argument --token-ttl/-l: invalid int value: '{raw_ttl}'", 2)
    fmt = opt("--format", default="pretty")
    if fmt not in ("pretty", "short", "token", "token-check", "json", "yaml"):
        err(f"{usage}\nmicrok8s add-node: error: argument --format: invalid choice: '{fmt}'", 2)
    import secrets
    token = opt("--token", "-t") or secrets.token_hex(16)
    if len(token) < common.TOKEN_MIN_LEN:
        out("Invalid token size.  It must be 32 characters long.", 1)
    with common.locked():
        with open(common.TOKENS, "a+") as f:
            f.write(f"{token}|{int(round(time.time())) + ttl}\n" if ttl != -1 else f"{token}\n")
    check, ip, port = common.check_value(), common.host_ip(), common.AGENT_PORT
    ips = [ip]  # get_ips: `hostname -I` without the CNI interfaces' addresses
    if fmt == "pretty":
        out("From the node you wish to join to this cluster, run the following:")
        out(f"microk8s join {ip}:{port}/{token}/{check}\n")
        out("Use the '--worker' flag to join a node as a worker not running the control plane, eg:")
        out(f"microk8s join {ip}:{port}/{token}/{check} --worker\n")
        out("If the node you are adding is not reachable through the default interface you can use one of the following:")
        for i in ips:
            out(f"microk8s join {i}:{port}/{token}/{check}")
    elif fmt == "short":
        out(f"microk8s join {ip}:{port}/{token}/{check}")
        for i in ips:
            if i != ip:
                out(f"microk8s join {i}:{port}/{token}/{check}")
    elif fmt == "token-check":
        out(f"{token}/{check}")
    elif fmt == "json":
        out(json.dumps({"token": f"{token}/{check}", "urls": [f"{i}:{port}/{token}/{check}" for i in ips]}, indent=2))
    elif fmt == "yaml":
        out(f"token: {token}/{check}\nurls:\n" + "".join(f"- {i}:{port}/{token}/{check}\n" for i in ips))
    else:
        out(token)


# ---- join (scripts/wrappers/join.py) -------------------------------------------------------

def connection_parts(connection):
    """common/cluster/utils.py get_valid_connection_parts."""
    parts = connection.split("/")
    if len(parts) not in (2, 3) or len(parts[0].split(":")) != 2:
        raise ValueError("Expected format: <master_IP>:<master_PORT>/<token>[/<fingerprint>]")
    host, port = parts[0].split(":")
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", host) or any(int(o) > 255 for o in host.split(".")):
        raise ValueError("Invalid master IP")
    if not port.isdigit():
        raise ValueError("Master PORT not a number")
    if not 1 <= int(port) <= 65535:
        raise ValueError("Master PORT not in range 1:65535")
    if len(parts[1]) < common.TOKEN_MIN_LEN:
        raise ValueError(f"Cluster token size should be at least {common.TOKEN_MIN_LEN} bytes")
    if len(parts) == 3 and len(parts[2]) < common.FINGERPRINT_MIN_LEN:
        raise ValueError(f"Fingerprint should be at least {common.FINGERPRINT_MIN_LEN} bytes")
    return parts


def join():
    connection = next((a for a in rest if not a.startswith("-")), None)
    if connection is None:
        err("Usage: microk8s join [OPTIONS] CONNECTION\nTry 'microk8s join -h' for help.\n\n"
            "Error: Missing argument 'CONNECTION'.", 2)
    try:
        parts = connection_parts(connection)
    except ValueError as e:
        out(f"Invalid connection: {e}", 1)
    worker = "--worker" in rest
    verify = "--skip-verify" not in rest
    host, port = parts[0].split(":")
    token = parts[1]
    fingerprint = parts[2] if len(parts) == 3 else None
    out(f"Contacting cluster at {host}")
    import hashlib, http.client, ssl
    conn = http.client.HTTPSConnection(f"{host}:{port}", context=ssl._create_unverified_context())
    try:
        conn.connect()
    except ssl.SSLError as e:
        out(f"Peer node verification failed with {e}.", 4)
    except OSError as e:
        # Not caught by join.py: Python's own traceback, exit status 1.
        err("Traceback (most recent call last):\n"
            '  File "/snap/microk8s/current/scripts/wrappers/join.py", line 159, in get_connection_info\n'
            f"    conn.connect()\n{type(e).__name__}: {e}")
    if verify and fingerprint:
        peer = hashlib.sha256(conn.sock.getpeercert(True)).hexdigest()
        if not peer.startswith(fingerprint):
            out(f"Joining cluster failed. Could not verify the identity of {host}."
                " Use '--skip-verify' to skip server certificate check.", 4)
    body = {"token": token, "hostname": common.hostname(), "port": str(common.AGENT_PORT), "worker": worker,
            "can_handle_x509_auth": True, "can_handle_custom_etcd": True,
            "lab_channel": state["channel"]}  # lab only: the kubelet version the node will report
    try:
        conn.request("POST", "/cluster/api/v2.0/join", json.dumps(body),
                     {"Content-type": "application/json", "Accept": "application/json"})
        resp = conn.getresponse()
        data = resp.read().decode()
    except http.client.HTTPException as e:
        out(f"Please ensure the master node is reachable. {e}", 1)
    if resp.status != 200:
        message = "Connection failed."
        try:
            if data and "error" in json.loads(data):
                message = f"{message} {json.loads(data)['error']}"
        except ValueError:
            pass
        out(f"{message} ({resp.status}).", 6)
    info = json.loads(data)
    if worker:
        if info.get("ca_key") is not None:
            out("Joining process failed. Make sure the cluster you connect to supports joining worker nodes.", 1)
    else:
        out("Waiting for this node to finish joining the cluster. .. .. ")

    if worker:
        # join.py mark_worker_node: the locks the wrappers test in shell (`microk8s` here).
        os.makedirs(f"{common.SNAP_DATA}/var/lock", exist_ok=True)
        for lock in ("clustered.lock", "no-k8s-dqlite"):
            open(f"{common.SNAP_DATA}/var/lock/{lock}", "a").close()
            os.chmod(f"{common.SNAP_DATA}/var/lock/{lock}", 0o700)

    def joined(s):
        s["role"] = "worker" if worker else "control-plane"
        s["controller"] = host
    common.update(joined)
    if worker:
        out("\nThe node has joined the cluster and will appear in the nodes list in a few seconds.\n")
        out("This worker node gets automatically configured with the API server endpoints.")
        out("If the API servers are behind a loadbalancer please set the '--refresh-interval' to '0s' in:")
        out("    /var/snap/microk8s/current/args/apiserver-proxy")
        out("and replace the API server endpoints with the one provided by the loadbalancer in:")
        out("    /var/snap/microk8s/current/args/traefik/provider.yaml\n")
    out("Successfully joined the cluster.")


# ---- config (microk8s-config.wrapper) ------------------------------------------------------

def config():
    if is_worker:
        out(node_msg("config"), 0)
    text = open(common.CLIENT_CONFIG).read()
    if "-l" not in rest and "--use-loopback" not in rest:
        text = "\n".join(l.replace("127.0.0.1", common.host_ip(), 1) for l in text.split("\n"))
    sys.stdout.write(text)
    out()


# ---- kubectl (microk8s-kubectl.wrapper → kubectl 1.32) -------------------------------------

def all_nodes(s):
    me = {"name": common.hostname(), "ip": common.host_ip(), "worker": False, "channel": s["channel"],
          "created": s.get("created", common.now()), "unschedulable": s.get("unschedulable", False),
          "annotations": s.get("annotations", {}),
          **{k: s[k] for k in ("lease", "lease_seconds", "status_posted", "ready_since") if k in s}}
    return sorted([me] + s["nodes"], key=lambda n: n["name"])  # the API lists by name


def set_unschedulable(s, name, value):
    if name == common.hostname():
        s["unschedulable"] = value
    for n in s["nodes"]:
        if n["name"] == name:
            n["unschedulable"] = value


def node_record(s, name):
    """Where the state keeps node NAME: the controller's own fields are the state's top level."""
    if name == common.hostname():
        return s
    return next(n for n in s["nodes"] if n["name"] == name)


def node_object(n):
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": n["name"], "kubernetes.io/os": "linux", "microk8s.io/cluster": "true"}
    if n["worker"]:
        labels["node.kubernetes.io/microk8s-worker"] = "microk8s-worker"
    else:
        labels["node.kubernetes.io/microk8s-controlplane"] = "microk8s-controlplane"
    t = time.time()
    ready = common.node_ready(n, t)
    spec, taints = {}, []
    if n.get("unschedulable"):
        taints.append({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable",
                       "timeAdded": iso(n.get("cordoned_at", common.now()))})
        spec["unschedulable"] = True
    if not ready:
        # The node lifecycle controller taints an Unknown node unreachable, NoSchedule and
        # NoExecute (node_lifecycle_controller.go UnreachableTaintTemplate,
        # doNoScheduleTaintingPass, doNoExecuteTaintingPass).
        since = iso(common.probe_time(n) + common.grace_seconds())
        taints += [{"effect": e, "key": "node.kubernetes.io/unreachable", "timeAdded": since}
                   for e in ("NoSchedule", "NoExecute")]
    if taints:
        spec["taints"] = taints
    version = common.snap_version(n.get("channel") or state["channel"])
    created = iso(n["created"])
    # The kubelet's annotation (pkg/kubelet/kubelet_node_status.go, initialNode) and the TTL
    # controller's (pkg/controller/ttl/ttl_controller.go, 0 below 100 nodes), then any patched in.
    annotations = {"node.alpha.kubernetes.io/ttl": "0",
                   "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                   **n.get("annotations", {})}
    # Capacity is the machine's (the kubelet's cadvisor MachineInfo: cores, MemTotal; 110 pods),
    # here the runner's, which every lab host shares; allocatable is capacity less the reserved
    # (MicroK8s reserves none) and the hard eviction threshold memory.available<100Mi (kubernetes
    # release-1.32, pkg/kubelet/cm/node_container_manager_linux.go,
    # GetNodeAllocatableAbsolute; pkg/kubelet/eviction/defaults_linux.go).
    mem_ki = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    capacity = {"cpu": str(os.cpu_count()), "memory": f"{mem_ki}Ki", "pods": "110"}
    allocatable = dict(capacity, memory=f"{mem_ki - 100 * 1024}Ki")
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n["name"], "labels": labels, "annotations": annotations,
                         "creationTimestamp": created},
            "spec": spec,
            "status": {"addresses": [{"address": n["ip"], "type": "InternalIP"},
                                     {"address": n["name"], "type": "Hostname"}],
                       "capacity": capacity, "allocatable": allocatable,
                       "conditions": conditions(n, ready, created),
                       "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.6.28",
                                    "kubeProxyVersion": version, "kubeletVersion": version,
                                    "operatingSystem": "linux", "osImage": "Ubuntu 24.04 LTS"}}}


def conditions(n, ready, created):
    """The kubelet's four conditions, in its order and words (kubernetes release-1.32
    pkg/kubelet/nodestatus/setters.go): no pressure, Ready; lastHeartbeatTime is when it last
    posted its status. Past the grace period without a heartbeat, the node lifecycle controller
    sets all four Unknown, "Kubelet stopped posting node status.", at that moment
    (node_lifecycle_controller.go tryUpdateNodeHealth; its 5 s monitor period is not modelled)."""
    posted = iso(n.get("status_posted", n["created"]))
    if not ready:
        since = iso(common.probe_time(n) + common.grace_seconds())
        return [dict(type=t, status="Unknown", reason="NodeStatusUnknown",
                     message="Kubelet stopped posting node status.", lastHeartbeatTime=posted,
                     lastTransitionTime=since)
                for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")]
    return [dict(type=t, status=v, reason=r, message=m, lastHeartbeatTime=posted,
                 lastTransitionTime=iso(n.get("ready_since", n["created"])) if t == "Ready" else created)
            for t, v, r, m in (
                ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))]


def lease_object(n):
    """The node's Lease in kube-node-lease, as the kubelet's lease controller writes it
    (component-helpers apimachinery/lease/controller.go newLease: holderIdentity, the duration,
    renewTime as a MicroTime). The Node owner reference is left out."""
    renew = datetime.fromtimestamp(n.get("lease", n["created"]), timezone.utc)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": n["name"], "namespace": "kube-node-lease",
                         "creationTimestamp": iso(n["created"])},
            "spec": {"holderIdentity": n["name"], "leaseDurationSeconds": n.get("lease_seconds", 40),
                     "renewTime": renew.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration HumanDuration (as kubectl's AGE column)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d" if h % 24 == 0 else f"{h // 24}d{h % 24}h"
    return f"{h // 24}d"


def table(rows):
    """cli-runtime's tabwriter: minwidth 6, padding 3; the last column unpadded."""
    widths = [max(6, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    for r in rows:
        out("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1])


def node_row(n):
    # kubectl's printNode: "Not" + the type for a condition that is not True.
    status = "Ready" if common.node_ready(n, time.time()) else "NotReady"
    if n.get("unschedulable"):
        status += ",SchedulingDisabled"
    return [n["name"], status, "<none>", human_duration(common.now() - n["created"]),
            common.snap_version(n.get("channel") or state["channel"])]


def not_found(name):
    err(f'Error from server (NotFound): nodes "{name}" not found')


def live_pods(s):
    """Pods whose termination has finished are gone."""
    t = time.time()
    s["pods"] = [p for p in s.get("pods", []) if p.get("gone_at") is None or p["gone_at"] > t]
    return [p for p in s["pods"] if (p.get("not_before") or 0) <= t]


def parse_duration(v):
    """Go's time.ParseDuration, enough of it for --timeout."""
    if v == "0":
        return 0.0
    m = re.fullmatch(r"((?:\d+(?:\.\d*)?(?:h|m|s|ms|us|µs|ns))+)", v)
    if not m:
        unit_missing = re.fullmatch(r"\d+(\.\d*)?", v)
        raise ValueError(f'time: missing unit in duration "{v}"' if unit_missing else f'time: invalid duration "{v}"')
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * scale[u] for n, u in re.findall(r"(\d+(?:\.\d*)?)(h|ms|m|s|us|µs|ns)", v))


def kubectl_flags(verb, words, bools, values):
    """cobra's parsing: returns (positional, {flag: value}); unknown flags are errors."""
    pos, flags, i = [], {}, 0
    while i < len(words):
        a = words[i]
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if name in bools:
                if eq and val.lower() not in ("true", "false", "1", "0", "t", "f"):
                    err(f'error: invalid argument "{val}" for "--{name}" flag: strconv.ParseBool: parsing "{val}": '
                        f"invalid syntax\nSee 'kubectl {verb} --help' for usage.")
                flags[name] = (val.lower() in ("true", "1", "t")) if eq else True
            elif name in values:
                if not eq:
                    if i + 1 >= len(words):
                        err(f"error: flag needs an argument: --{name}\nSee 'kubectl {verb} --help' for usage.")
                    i += 1
                    val = words[i]
                flags[name] = val
            else:
                err(f"error: unknown flag: --{name}\nSee 'kubectl {verb} --help' for usage.")
        elif a.startswith("-") and a != "-":
            err(f"error: unknown shorthand flag: '{a[1]}' in {a}\nSee 'kubectl {verb} --help' for usage.")
        else:
            pos.append(a)
        i += 1
    if not pos:
        err(f"error: USAGE: {verb} NODE [flags]\nSee 'kubectl {verb} -h' for help and examples")
    s = common.load()
    known = {n["name"] for n in all_nodes(s)}
    for name in pos:
        if name not in known:
            not_found(name)
    return pos, flags


def cordon(words, desired):
    verb = "cordon" if desired else "uncordon"
    names, _ = kubectl_flags(verb, words, set(), {"selector", "dry-run"})
    for name in names:
        def change(s):
            node = next(n for n in all_nodes(s) if n["name"] == name)
            if bool(node.get("unschedulable")) == desired:
                return False
            set_unschedulable(s, name, desired)
            for n in s["nodes"]:
                if n["name"] == name:
                    n["cordoned_at"] = common.now()
            return True
        changed = common.update(change)
        # pkg/cmd/drain/drain.go RunCordonOrUncordon via the name printer: node/NAME OPERATION
        out(f"node/{name} {verb + 'ed' if changed else 'already ' + verb + 'ed'}")


def patch(words):
    """`kubectl patch node NAME` (or `node/NAME`) `--type merge|strategic --patch JSON`
    (staging/src/k8s.io/kubectl/pkg/cmd/patch/patch.go, release-1.32): the name printer's
    `node/NAME patched`, or `node/NAME patched (no change)` when the object came back unchanged
    (patchOperation). For the two fields the lab models, a Node's metadata.annotations and
    spec.unschedulable, both patch types agree: a value replaces, null removes."""
    usage = "the lab stand-in answers `kubectl patch node NAME --type merge|strategic --patch JSON` only"
    if words[:1] in (["node"], ["nodes"], ["no"]):
        words = words[1:]
    elif words and words[0].startswith(("node/", "nodes/", "no/")):
        words = [words[0].split("/", 1)[1]] + words[1:]
    else:
        err(usage)
    # -p is --patch's shorthand (pflag: "-p VALUE", "-p=VALUE", "-pVALUE").
    long = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "-p" and i + 1 < len(words):
            long.append("--patch=" + words[i + 1])
            i += 1
        elif w.startswith("-p") and not w.startswith("--"):
            long.append("--patch=" + w[2:].removeprefix("="))
        else:
            long.append(w)
        i += 1
    # kubectl_flags also answers NotFound for a name that is no node.
    pos, flags = kubectl_flags("patch", long, set(), {"patch", "type"})
    if len(pos) != 1 or "patch" not in flags:
        err(usage)
    if flags.get("type", "strategic") not in ("merge", "strategic"):
        err(f"the lab stand-in patches with --type merge or strategic, not {flags['type']}")
    name = pos[0]
    try:
        body = json.loads(flags["patch"])
    except ValueError as e:
        err(f"error: unable to parse \"{flags['patch']}\": {e}")
    extra = {k for k in body if k not in ("metadata", "spec")} | \
        {k for k in body.get("metadata", {}) if k != "annotations"} | \
        {k for k in body.get("spec", {}) if k != "unschedulable"}
    if extra:
        err(f"the lab stand-in patches a node's metadata.annotations and spec.unschedulable only, not {sorted(extra)}")
    values = body.get("metadata", {}).get("annotations", {}).values()
    if not all(v is None or isinstance(v, str) for v in values) or \
            not isinstance(body.get("spec", {}).get("unschedulable", False), bool):
        err("the lab stand-in takes string (or null) annotations and a boolean spec.unschedulable; "
            "the API server answers 400 BadRequest to other types")

    def change(s):
        rec = node_record(s, name)
        before = (dict(rec.get("annotations", {})), bool(rec.get("unschedulable")))
        annotations = dict(before[0])
        for k, v in body.get("metadata", {}).get("annotations", {}).items():
            if v is None:
                annotations.pop(k, None)
            else:
                annotations[k] = v
        rec["annotations"] = annotations
        if "unschedulable" in body.get("spec", {}):
            unschedulable = body["spec"]["unschedulable"]
            if unschedulable != before[1]:
                set_unschedulable(s, name, unschedulable)
                rec["cordoned_at"] = common.now()
        return (annotations, bool(rec.get("unschedulable"))) != before
    changed = common.update(change)
    out(f"node/{name} patched" + ("" if changed else " (no change)"))


def pod_status(p, flags):
    """pkg/drain/filters.go makeFilters: daemonSet, mirror, localStorage, unreplicated — each
    while the previous one still deletes; the last evaluated decides (delete, kind, message)."""
    status = (True, None, None)
    for f in ("daemonset", "localstorage", "unreplicated"):
        if f == "daemonset" and p["owner"] == "DaemonSet":
            status = ((False, "error", "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)")
                      if not flags.get("ignore-daemonsets") else (False, "warning", "ignoring DaemonSet-managed Pods"))
        elif f == "localstorage" and p.get("emptydir"):
            status = ((False, "error", "Pods with local storage (use --delete-emptydir-data to override)")
                      if not flags.get("delete-emptydir-data") else (True, "warning", "deleting Pods with local storage"))
        elif f == "unreplicated":
            if p["owner"]:
                status = (True, None, None)
            else:
                status = ((True, "warning", "deleting Pods that declare no controller") if flags.get("force") else
                          (False, "error", "cannot delete Pods that declare no controller (use --force to override)"))
        if not status[0]:
            break
    return status


def grouped(pods, kind, flags, fmt):
    by = {}
    for p in pods:
        d, k, msg = pod_status(p, flags)
        if k == kind:
            by.setdefault(msg, []).append(f"{p['namespace']}/{p['name']}")
    return [fmt.format(msg, ", ".join(names)) for msg, names in by.items()]


def aggregate(msgs):
    """utilerrors.Aggregate's Error(): one message as is, several in brackets."""
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


def drain(words):
    names, flags = kubectl_flags("drain", words, {"force", "ignore-daemonsets", "delete-emptydir-data", "disable-eviction"},
                                 {"timeout", "grace-period", "pod-selector", "skip-wait-for-delete-timeout",
                                  "selector", "chunk-size", "dry-run"})
    try:
        timeout = parse_duration(flags.get("timeout", "0"))
    except ValueError as e:
        err(f'error: invalid argument "{flags["timeout"]}" for "--timeout" flag: {e}\n'
            "See 'kubectl drain --help' for usage.")
    grace = int(flags.get("grace-period", "-1"))
    evict = not flags.get("disable-eviction")
    cordon(names, True)
    pending_nodes, fatal = [], []
    for name in names:
        pods = [p for p in common.update(live_pods) if p["node"] == name]
        errors = grouped(pods, "error", flags, "cannot delete {}: {}")
        if errors:
            print(f'error: unable to drain node "{name}" due to error: {aggregate(errors)}, continuing command...',
                  file=sys.stderr)
            pending_nodes.append(name)
            fatal.append(errors)
            continue
        warnings = grouped(pods, "warning", flags, "{}: {}")
        if warnings:
            print("Warning: " + "; ".join(warnings), file=sys.stderr)
        doomed = [p for p in pods if pod_status(p, flags)[0]]
        errors = evict_pods(name, doomed, timeout, grace, evict)
        if errors:
            # evictPods returns an aggregate; deletePods the poll's own error.
            err_text = aggregate(errors) if evict else errors[0]
            still = [p for p in common.update(live_pods) if p["node"] == name and pod_status(p, flags)[0]]
            if still:
                print(f'There are pending pods in node "{name}" when an error occurred: {err_text}', file=sys.stderr)
                for p in still:
                    print(f"pod/{p['name']}", file=sys.stderr)
            print(f'error: unable to drain node "{name}" due to error: {err_text}, continuing command...', file=sys.stderr)
            pending_nodes.append(name)
            fatal.append(errors if evict else [f"error: {errors[0]}"])
            continue
        out(f"node/{name} drained")
    if pending_nodes:
        print("There are pending nodes to be drained:", file=sys.stderr)
        for name in pending_nodes:
            print(f" {name}", file=sys.stderr)
        # cmdutil.CheckErr: an aggregate of one node's errors prints one line per error without
        # an "error: " prefix; several nodes print one (aggregated) line each.
        err("\n".join(fatal[0]) if len(fatal) == 1 else "\n".join(aggregate(f) for f in fatal))


def evict_pods(node, pods, timeout, grace, evict):
    """pkg/drain/drain.go evictPods / deletePods + waitForDelete: each pod is evicted, then
    polled every second until gone; --timeout bounds the whole drain (0: no bound)."""
    if not pods:
        return []
    start = time.time()
    deadline = start + timeout if timeout else None
    keys = {(p["namespace"], p["name"]) for p in pods}

    def begin(s):
        schedulable = [n["name"] for n in all_nodes(s) if not n.get("unschedulable") and n["name"] != node]
        for p in list(s["pods"]):
            if (p["namespace"], p["name"]) in keys and p.get("deleting_since") is None and p["node"] == node:
                term = p.get("terminate_seconds", 1)
                if grace >= 0:
                    term = min(term, grace)
                p["deleting_since"] = start
                p["gone_at"] = start + term
                if p["owner"] in ("ReplicaSet", "StatefulSet"):
                    # The controller replaces the pod on a node that takes pods (Pending if none).
                    base = p["name"].rsplit("-", 1)[0] if p["owner"] == "ReplicaSet" else p["name"]
                    name = f"{base}-{common.k8s_suffix(5)}" if p["owner"] == "ReplicaSet" else p["name"]
                    # A StatefulSet recreates its pod (same name) only once the old one is gone.
                    s["pods"].append({**{k: v for k, v in p.items() if k not in ("deleting_since", "gone_at")},
                                      "name": name, "node": schedulable[0] if schedulable else None,
                                      "not_before": p["gone_at"] if p["owner"] == "StatefulSet" else None})
    common.update(begin)
    if evict:
        for p in pods:
            out(f"evicting pod {p['namespace']}/{p['name']}")
    waiting = list(pods)
    verb = "evicted" if evict else "deleted"
    while True:
        current = {(p["namespace"], p["name"], p.get("node")) for p in common.update(live_pods)}
        for p in list(waiting):
            if (p["namespace"], p["name"], node) not in current:
                out(f"pod/{p['name']} {verb}")
                waiting.remove(p)
        if not waiting:
            return []
        if deadline is not None and time.time() + 1 > deadline:
            time.sleep(max(0.0, deadline - time.time()))
            return [f'error when waiting for pod "{p["name"]}" in namespace "{p["namespace"]}" to terminate: '
                    "context deadline exceeded" for p in waiting] if evict else ["context deadline exceeded"]
        time.sleep(1)


def get_list(kinds):
    """`kubectl get nodes,leases -n kube-node-lease -o json` (or `leases` alone): one List of
    every kind asked, in that order; Nodes are cluster-scoped, so `-n` does not filter them."""
    ns = "default"
    if "-A" in rest or "--all-namespaces" in rest:
        ns = None
    else:
        ns = opt("-n", "--namespace", default="default")
    if opt("-o", "--output") != "json" or any(k not in ("nodes", "node", "no", "leases", "lease") for k in kinds):
        err("the lab stand-in answers `kubectl get nodes,leases -n kube-node-lease -o json` only")
    nodes = all_nodes(common.load())
    items = []
    for k in kinds:
        if k in ("nodes", "node", "no"):
            items += [node_object(n) for n in nodes]
        elif ns in (None, "kube-node-lease"):
            items += [lease_object(n) for n in nodes]
    out(json.dumps({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}},
                   indent=4))


def kubectl():
    if is_worker:
        out(node_msg("kubectl"), 0)
    words = list(rest)
    if not common.api_up():
        err(REFUSED)
    kinds = words[1].split(",") if words[:1] == ["get"] and len(words) >= 2 else []
    if len(kinds) > 1 or kinds[:1] in (["leases"], ["lease"]):
        get_list(kinds)
    elif kinds[:1] in (["nodes"], ["node"], ["no"]):
        o = opt("-o", "--output")
        names = [w for w in words[2:] if not w.startswith("-") and w != o]
        nodes = all_nodes(common.load())
        if names:
            missing = [n for n in names if n not in {x["name"] for x in nodes}]
            if missing:
                not_found(missing[0])
            nodes = [n for n in nodes if n["name"] in names]
        if o == "json":
            items = [node_object(n) for n in nodes]
            if len(names) == 1:
                out(json.dumps(items[0], indent=4))
            else:
                out(json.dumps({"apiVersion": "v1", "items": items, "kind": "List",
                                "metadata": {"resourceVersion": ""}}, indent=4))
        elif o is None:
            table([["NAME", "STATUS", "ROLES", "AGE", "VERSION"]] + [node_row(n) for n in nodes])
        else:
            err(f"the lab stand-in answers `kubectl get nodes` in table or -o json only, not -o {o}")
    elif words[:1] == ["cordon"]:
        cordon(words[1:], True)
    elif words[:1] == ["uncordon"]:
        cordon(words[1:], False)
    elif words[:1] == ["drain"]:
        drain(words[1:])
    elif words[:1] == ["patch"]:
        patch(words[1:])
    else:
        err("the lab stand-in answers `kubectl get nodes|node NAME [-o json]`, `cordon`, `uncordon`, `drain` and `patch node` only")


if cmd == "status":
    status()
elif cmd == "enable":
    enable()
elif cmd == "add-node":
    add_node()
elif cmd == "join":
    join()
elif cmd == "config":
    config()
elif cmd == "kubectl":
    kubectl()
elif cmd == "version":
    out(f"MicroK8s {common.snap_version(state['channel'])} revision {common.snap_revision(state['channel'])}")
else:
    err(f"'{cmd}' is not a command the lab stand-in knows (status, enable, add-node, join, config, kubectl, version)")
