#!/usr/bin/env python3
"""Jeeves' MongoDB operator values and MongoDBCommunity against the real operator chart
(tests/fixtures/charts/mongodb-kubernetes-1.10.0.tgz, packaged from mongodb/mongodb-kubernetes
tag 1.10.0, helm_chart/), for tests/charts.rs:

- every key of Jeeves' values is one the chart reads (in its values.yaml, or `.Values.<key>` in
  a template: `operator.watchNamespace` is only the latter);
- every object `helm template --include-crds` renders validates strictly against Kubernetes'
  schemas (kubernetes-validate, the CRDs as apiextensions.k8s.io/v1 objects);
- the operator Deployment watches the replica set's namespace and builds the image type Jeeves
  asked for (`WATCH_NAMESPACE`, `MDB_COMMUNITY_IMAGE_TYPE`), with Jeeves' resources;
- the database pods' ServiceAccount `mongodb-kubernetes-appdb` (the StatefulSet's,
  mongodb-community-operator/controllers/construct/mongodbstatefulset.go) is rendered in that
  namespace;
- Jeeves' MongoDBCommunity validates strictly against the chart's own CRD schema, and the
  connection-string Secret Jeeves reads is the one the operator names for Rocket.Chat's user
  (`<name>-<db>-<user>`, GetConnectionStringSecretName), that user's `db` being the database
  Rocket.Chat writes to.
Problems are printed one a line; exit 1 when there is any."""
import argparse, io, sys, tarfile

import jsonschema
import kubernetes_validate
import yaml

from check import strict

problems = []


def problem(kind, msg):
    problems.append(f"{kind}: {msg}")


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def leaves(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from leaves(v, prefix + (k,))
        else:
            yield prefix + (k,)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--chart", required=True)
    a.add_argument("--helm-out", required=True)
    a.add_argument("--values", required=True)
    a.add_argument("--cr", required=True)
    a.add_argument("--namespace", required=True)
    a.add_argument("--kube-version", required=True)
    a.add_argument("--connection-secret", required=True)
    a.add_argument("--user", required=True)
    args = a.parse_args()

    chart_values, templates = {}, ""
    with tarfile.open(args.chart) as t:
        for m in t.getmembers():
            parts = m.name.split("/")
            if parts[1:] == ["values.yaml"]:
                chart_values = yaml.safe_load(t.extractfile(m).read())
            elif len(parts) > 2 and parts[1] == "templates":
                templates += t.extractfile(m).read().decode()
    values = yaml.safe_load(open(args.values).read())
    for path in leaves(values):
        node, found = chart_values, True
        for k in path:
            if isinstance(node, dict) and k in node:
                node = node[k]
            else:
                found = False
                break
        if not found and ".Values." + ".".join(path) not in templates:
            problem("values", f"`{'.'.join(path)}` is not read by the chart")

    objects = docs(open(args.helm_out).read())
    for o in objects:
        name = f"{o.get('kind')} {o.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(o, args.kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            problem("schema", f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problem("schema", f"{name}: no Kubernetes {args.kube_version} schema for {o.get('apiVersion')} {o.get('kind')}")

    operator = [o for o in objects if o["kind"] == "Deployment"]
    if len(operator) != 1:
        problem("operator", f"{len(operator)} Deployments rendered, not one")
    else:
        c = operator[0]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if env.get("WATCH_NAMESPACE") != args.namespace:
            problem("operator", f"WATCH_NAMESPACE is {env.get('WATCH_NAMESPACE')!r}, not {args.namespace!r}")
        want_type = values["community"]["mongodb"]["imageType"]
        if env.get("MDB_COMMUNITY_IMAGE_TYPE") != want_type:
            problem("operator", f"MDB_COMMUNITY_IMAGE_TYPE is {env.get('MDB_COMMUNITY_IMAGE_TYPE')!r}, not {want_type!r}")
        if c.get("resources") != values["operator"]["resources"]:
            problem("operator", f"resources {c.get('resources')} are not Jeeves' {values['operator']['resources']}")
    if not any(o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "mongodb-kubernetes-appdb"
               and o["metadata"].get("namespace") == args.namespace for o in objects):
        problem("operator", f"no ServiceAccount mongodb-kubernetes-appdb in {args.namespace} for the database pods")

    crd = [o for o in objects if o["kind"] == "CustomResourceDefinition"
           and o["metadata"]["name"] == "mongodbcommunity.mongodbcommunity.mongodb.com"]
    crs = docs(open(args.cr).read())
    if not crd:
        problem("crd", "the chart renders no mongodbcommunity CRD (--include-crds)")
    for cr in crs:
        name = f"{cr['kind']} {cr['metadata']['name']}"
        schemas = {f"{crd[0]['spec']['group']}/{v['name']}": v["schema"]["openAPIV3Schema"]
                   for v in crd[0]["spec"]["versions"]} if crd else {}
        schema = schemas.get(cr["apiVersion"])
        if schema is None:
            problem("schema", f"{name}: the CRD serves no {cr['apiVersion']}")
            continue
        for e in jsonschema.Draft7Validator(strict(schema)).iter_errors(cr):
            problem("schema", f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
        if cr["metadata"].get("namespace") != args.namespace:
            problem("cr", f"{name} is in {cr['metadata'].get('namespace')}, not {args.namespace}")
        users = [u for u in cr["spec"].get("users", []) if u["name"] == args.user]
        if len(users) != 1:
            problem("cr", f"{name} has {len(users)} users named {args.user}")
            continue
        u = users[0]
        # GetConnectionStringSecretName (the user sets no connectionStringSecretName).
        written = u.get("connectionStringSecretName") or f"{cr['metadata']['name']}-{u.get('db', 'admin')}-{u['name']}"
        if written != args.connection_secret:
            problem("cr", f"the operator writes {written}, Jeeves reads {args.connection_secret}")
        if u.get("db") != args.user:
            problem("cr", f"user {args.user} is defined in {u.get('db', 'admin')!r}: its URI would name that database")

    print(f"checked {len(objects)} chart objects, {len(crs)} MongoDBCommunity")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


main()
