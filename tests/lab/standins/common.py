"""State shared by the microk8s stand-ins (lab only): /var/snap/microk8s is per lab host."""
import json, os, socket, time

SNAP = "/var/snap/microk8s"
STATE = f"{SNAP}/common/jeeves-standin.json"
TOKENS = f"{SNAP}/current/credentials/cluster-tokens.txt"
AGENT_PORT = 25000
ADDONS = ["cert-manager", "dashboard", "dns", "helm", "helm3", "hostpath-storage", "ingress",
          "metallb", "metrics-server", "rbac", "registry", "storage"]


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save(state):
    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, STATE)


def host_ip():
    """The address of eth0 (the lab bridge), as MicroK8s' get_default_ip finds it."""
    return socket.gethostbyname(socket.gethostname())


def check_value(state):
    return state["check"]


def now():
    return int(time.time())
