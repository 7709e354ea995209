"""The MongoDB operator as the kubectl stand-in plays it (tests only; see README.md here):
MongoDB Controllers for Kubernetes 1.10.0 reconciling a `MongoDBCommunity`
(mongodb/mongodb-kubernetes, tag 1.10.0, `mongodb-community-operator/controllers/
replica_set_controller.go`, `Reconcile`). A reconcile runs each time the object is read (the
stand-in's stand-in for the operator's watch and its 10-second requeue), and only when the
operator's Deployment exists and watches the object's namespace (`WATCH_NAMESPACE`, the chart's
`templates/operator.yaml`): with no operator nothing touches the object, as in a real cluster.

One reconcile, in the operator's order:
- a user whose password Secret (or key) is missing: phase `Failed`, message `Error ensuring User
  config: user password secret: NS/NAME and scram secret: NS/SCRAM not found`
  (`controllers/mongodb_users.go`, `ensureUserResources`; `controllers/replica_set_controller.go`);
- the Service `<name>-svc` and the StatefulSet `<name>` (`spec.members` replicas, pods labelled
  `app: <name>-svc`, containers `mongod` and `mongodb-agent`; `controllers/construct/
  mongodbstatefulset.go`) made or updated; a spec the operator has not seen yet, or a member
  pod not ready (`pod_faults` in the state file, as workloads.py derives the pods), leaves phase
  `Pending`, message `ReplicaSet is not yet ready, retrying in 10 seconds`;
- otherwise phase `Running`, message empty, `currentMongoDBMembers`,
  `currentStatefulSetReplicas`, `version`, `mongoUri` (`withRunningPhase`, `MongoURI`), and then,
  per user, the connection-string Secret `<name>-<db>-<user>` (`GetConnectionStringSecretName`,
  in `connectionStringSecretNamespace` or the object's namespace) with `connectionString.standard`
  (`MongoAuthUserURI`: `mongodb://user:pw@<name>-<i>.<name>-svc.<ns>.svc.cluster.local:27017,…/<db>?replicaSet=<name>&ssl=false`),
  `connectionString.standardSrv`, `username`, `password` (`controllers/mongodb_users.go`,
  `updateConnectionStringSecrets`). Passwords are URL-escaped in the URI as the operator's
  `GetLoginString` does (`url.QueryEscape`)."""
import base64, hashlib, json, re, urllib.parse

import workloads

OPERATOR = "mongodb-kubernetes-operator"  # the chart's operator.name


def serve(cr, hosts, name):
    """The replica set's members, as the stand-in mongo tools reach them (tests/standins/image/
    standin_mongo.py: a server is a JSON file in `standin-mongo/` beside the cluster state, named
    after its sorted host list): made once the set runs, with the replica set name the operator
    gives it (its own name: `controllers/replica_set_controller.go`, `buildAutomationConfig`,
    `SetName(mdb.Name)`) and each user's roles from the spec (`<role>@<db>`, as the stand-in
    reads them). It holds no data until something writes some; it is never removed here: a test
    that takes the cluster away removes the cluster's state and these files with it."""
    import os
    root = os.path.join(os.path.dirname(os.path.realpath(os.environ["LAB_STANDIN_STATE"])), "standin-mongo")
    path = os.path.join(root, ",".join(sorted(hosts)) + ".json")
    if os.path.exists(path):
        return
    users = {u["name"]: [f'{r["name"]}@{r["db"]}' for r in u.get("roles", [])]
             for u in cr.get("spec", {}).get("users", [])}
    os.makedirs(root, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"setName": name, "users": users, "databases": {}}, f)


def watched(objs, ns):
    for o in objs.values():
        if o.get("kind") != "Deployment" or o["metadata"]["name"] != OPERATOR:
            continue
        for c in o["spec"]["template"]["spec"].get("containers", []):
            for e in c.get("env", []):
                if e.get("name") != "WATCH_NAMESPACE":
                    continue
                # Without a value the operator watches its own namespace (fieldRef).
                value = e.get("value") or o["metadata"].get("namespace")
                if value in ("*", ns) or ns in value.split(","):
                    return True
    return False


def secret_value(objs, ns, name, key):
    s = objs.get(f"Secret/{ns}/{name}")
    if not s or key not in (s.get("data") or {}):
        return None
    return base64.b64decode(s["data"][key]).decode()


def normalize(name):
    """normalizeName: RFC 1123 as is, else lowercased with runs of other characters as '-'."""
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) and len(name) <= 253:
        return name
    return re.sub(r"[^a-z0-9-]+", "-", name.lower())


def reconcile(objs, state, cr, nodes, started):
    m, spec = cr["metadata"], cr.get("spec", {})
    ns, name = m.get("namespace", "default"), m["name"]
    if not watched(objs, ns):
        return
    status = cr.setdefault("status", {})
    users = []
    for u in spec.get("users", []):
        ref = u.get("passwordSecretRef", {})
        pw = secret_value(objs, ns, ref.get("name", ""), ref.get("key") or "password")
        if pw is None:
            scram = f"{u.get('scramCredentialsSecretName')}-scram-credentials"
            status.update(phase="Failed", message=(
                f"Error ensuring User config: user password secret: {ns}/{ref.get('name')} "
                f"and scram secret: {ns}/{scram} not found"))
            return
        users.append((u, pw))
    members = int(spec.get("members", 1))
    svc = f"{name}-svc"
    labels = {"app": svc}
    objs[f"Service/{ns}/{svc}"] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": svc, "namespace": ns, "labels": labels},
        "spec": {"clusterIP": "None", "selector": labels, "publishNotReadyAddresses": True,
                 "ports": [{"name": "mongodb", "port": 27017}]}}
    version = spec.get("version", "")
    tmpl = ((spec.get("statefulSet") or {}).get("spec") or {}).get("template", {})
    overrides = {c["name"]: c for c in (tmpl.get("spec") or {}).get("containers", [])}
    containers = [dict({"name": n, "image": img}, **{k: v for k, v in overrides.get(n, {}).items() if k != "name"})
                  for n, img in (("mongod", f"quay.io/mongodb/mongodb-community-server:{version}-ubi9"),
                                 ("mongodb-agent", "quay.io/mongodb/mongodb-agent:108.0.25.9029-1"))]
    objs[f"StatefulSet/{ns}/{name}"] = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "ownerReferences": [{"apiVersion": "mongodbcommunity.mongodb.com/v1",
                                          "kind": "MongoDBCommunity", "name": name, "controller": True}]},
        "spec": {"replicas": members, "serviceName": svc, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}}
    seen = state.setdefault("operator_seen", {})
    key = f"{ns}/{name}"
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    pods = [p for p in workloads.pods(objs, state, nodes, started)
            if p["metadata"]["namespace"] == ns and p["metadata"]["labels"].get("app") == svc]
    ready = all(all(c["ready"] for c in p["status"]["containerStatuses"]) for p in pods)
    if seen.get(key) != digest or not ready:
        seen[key] = digest
        status.update(phase="Pending", message="ReplicaSet is not yet ready, retrying in 10 seconds")
        return
    hosts = ",".join(f"{name}-{i}.{svc}.{ns}.svc.cluster.local:27017" for i in range(members))
    status.clear()
    status.update(phase="Running", currentMongoDBMembers=members, currentStatefulSetReplicas=members,
                  version=version, mongoUri=f"mongodb://{hosts}/?replicaSet={name}")
    serve(cr, hosts.split(","), name)
    b64 = lambda v: base64.b64encode(v.encode()).decode()
    for u, pw in users:
        db = u.get("db") or "admin"
        login = f"{urllib.parse.quote_plus(u['name'])}:{urllib.parse.quote_plus(pw)}@"
        standard = f"mongodb://{login}{hosts}/{db}?replicaSet={name}&ssl=false"
        srv = f"mongodb+srv://{login}{svc}.{ns}.svc.cluster.local/{db}?replicaSet={name}&ssl=false"
        sname = u.get("connectionStringSecretName") or normalize(f"{name}-{db}-{u['name']}")
        sns = u.get("connectionStringSecretNamespace") or ns
        objs[f"Secret/{sns}/{sname}"] = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": sname, "namespace": sns,
                         "annotations": u.get("connectionStringSecretAnnotations") or {},
                         "ownerReferences": [{"apiVersion": "mongodbcommunity.mongodb.com/v1",
                                              "kind": "MongoDBCommunity", "name": name}]},
            "data": {"connectionString.standard": b64(standard), "connectionString.standardSrv": b64(srv),
                     "username": b64(u["name"]), "password": b64(pw)}}
