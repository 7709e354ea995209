"""The stand-in MongoDB servers (tests only; see ../README.md), shared by the image's stand-in
mongodump and mongosh: what a connection string reaches, and what that server holds.

A server is a JSON file in $LAB_STANDIN_MONGO_DIR (set by the Job stand-in, `jobs.py`: the
`standin-mongo/` directory beside the cluster state), named after the URI's host list, sorted
and comma-joined (`db.internal:27017.json`; a host without a port gets `:27017`):

    {"setName": "rs0" or null,                 # null: a standalone server
     "version": "8.0.12",                      # buildInfo's version; absent: DEFAULT_VERSION
     "users": {"rc": ["readWrite@rocketchat"]},  # user → roles; absent: anyone may do anything
     "databases": {"rocketchat": {"users": [{"_id": 1}, …]}}}   # database → collection → documents

No file for a host list: a standalone server whose URI's database holds one collection, `users`,
with one document (what the stand-in mongodump wrote before servers had data)."""
import json, os

DEFAULT_PORT = 27017
# A server file without `version` (and a host list without a file) answers as a MongoDB 8.0
# does: the version the lab's replica set is pinned to, one every supported Rocket.Chat accepts.
DEFAULT_VERSION = "8.0.12"


class Uri:
    """A `mongodb://` or `mongodb+srv://` connection string's parts (the connection string
    spec: `scheme://[user[:password]@]host[:port][,host…][/[database][?options]]`)."""

    def __init__(self, text):
        self.scheme, rest = text.split("://", 1) if "://" in text else ("mongodb", text)
        hostpart, _, path = rest.partition("/")
        userinfo, _, hosts = hostpart.rpartition("@")
        self.user = userinfo.split(":", 1)[0] if userinfo else None
        self.hosts = [h if ":" in h else f"{h}:{DEFAULT_PORT}" for h in hosts.split(",") if h]
        self.database, _, query = path.partition("?")
        self.options = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)

    def first_host(self):
        return self.hosts[0].rsplit(":", 1)[0] if self.hosts else "localhost"


def server_file(uri):
    root = os.environ.get("LAB_STANDIN_MONGO_DIR", "")
    return os.path.join(root, ",".join(sorted(uri.hosts)) + ".json") if root else None


def load(uri):
    path = server_file(uri)
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"setName": None, "databases": {uri.database or "test": {"users": [{"_id": 1}]}}}


def save(uri, server):
    path = server_file(uri)
    if not path:
        raise SystemExit("LAB_STANDIN_MONGO_DIR is not set: the stand-in server has nowhere to keep its data")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(server, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


# Built-in roles that may `find` on local.oplog.rs and config.transactions, what mongodump
# --oplog reads (mongo-tools 100.x, mongodump/oplog_dump.go): `backup` (find on every
# collection, local and config included), `root` (which holds `backup`) and `__system`
# (MongoDB manual, "Built-In Roles"). `readAnyDatabase` leaves out local and config.
OPLOG_READERS = {"backup", "root", "__system"}


def may_read_oplog(server, user):
    users = server.get("users")
    if users is None:
        return True
    roles = {r.split("@", 1)[0] for r in users.get(user or "", [])}
    return bool(roles & OPLOG_READERS)


def readable_databases(server, user, database):
    """The databases a dump of `database` (or of everything: "") covers for `user`: with
    `authorizedDatabases`, listDatabases shows a user only the databases it holds a role on (all
    of them for `root`, `backup`, `readAnyDatabase`, `__system`), and a full dump never includes
    `local` (mongo-tools 100.x, mongodump/prepare.go `GetValidDbs`)."""
    dbs = server.get("databases", {})
    if database:
        return [database] if database in dbs else []
    users = server.get("users")
    roles = None if users is None else users.get(user or "", [])
    everything = roles is None or any(r.split("@", 1)[0] in ("root", "backup", "readAnyDatabase", "__system")
                                      for r in roles)
    own = set() if roles is None else {r.split("@", 1)[1] for r in roles if "@" in r}
    return sorted(d for d in dbs if d != "local" and (everything or d in own))
