#!/usr/bin/env python3
"""Checks what Jeeves renders against the real upstream artifacts (tests/charts.rs runs it).

  check.py --chart TGZ --helm-out FILE --rendered DIR --values FILE [--values FILE]…
           --namespace NS --crds FILE --rbac FILE --kube-version 1.32.0

--helm-out is the real `helm template` of the chart with Jeeves' values; --rendered is the output
of `jeeves render` (traefik/*.yaml, rocketchat-values.yaml). Prints one line per problem and
exits 1 when there is any:

  route   an IngressRoute backend names a Service or port the chart does not render
  values  a values key Jeeves sets that the chart never reads (not in its values.yaml, nor in a
          subchart's, nor read as .Values.<key> by a template): an ignored key is a bug
  schema  an object fails validation for the Kubernetes version (kubernetes-validate, strict),
          or a Traefik object fails its CRD's openAPIV3Schema (unknown fields rejected, as the
          API server's strict field validation does)
  image   an image from docker.io/bitnami/, a namespace emptied in 2025
  rbac    the rendered Traefik ClusterRole grants less than Traefik's own RBAC file
  secret  a key of the MongoDB secret (--secret) that the chart reads and Jeeves does not write
          (--secret-keys), or a bundled MongoDB host (--mongodb-host) that no Service answers
"""
import argparse, io, re, sys, tarfile

import jsonschema
import kubernetes_validate
import yaml

problems = []


def problem(kind, msg):
    problems.append(f"{kind}: {msg}")


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def read_chart(tgz):
    """values.yaml (each subchart's under its name, the parent's settings for it on top) and every
    template's text, from the package."""
    parent, subcharts, templates = {}, {}, []
    with tarfile.open(tgz) as t:
        for m in t.getmembers():
            parts = m.name.split("/")
            if not m.isfile():
                continue
            text = t.extractfile(m).read().decode()
            if parts[1:] == ["values.yaml"]:
                parent = yaml.safe_load(text) or {}
            elif len(parts) == 4 and parts[1] == "charts" and parts[3] == "values.yaml":
                subcharts[parts[2]] = yaml.safe_load(text) or {}
            elif len(parts) >= 3 and parts[1] == "templates":
                templates.append(text)
    values = dict(parent)
    for name, sub in subcharts.items():
        values[name] = merge(sub, parent.get(name))
    return values, templates


def merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v)
        return out
    return base if over is None else over


def leaves(d, prefix=()):
    if isinstance(d, dict) and d:
        for k, v in d.items():
            yield from leaves(v, prefix + (str(k),))
    else:
        yield prefix


def has_path(d, path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return False
        d = d[p]
    return True


def check_values(values_files, chart_values, templates):
    text = "\n".join(templates)
    for f in values_files:
        for path in leaves(yaml.safe_load(open(f)) or {}):
            if not path:
                continue
            if has_path(chart_values, path):
                continue
            dotted = ".".join(path)
            # Read directly by a template although not in values.yaml (e.g. `host`).
            if re.search(r"\.Values\." + re.escape(dotted) + r"\b", text):
                continue
            problem("values", f"{f}: `{dotted}` is not read by the chart (not in its values.yaml, "
                              f"nor as .Values.{dotted} in a template)")


def services_of(objects, ns):
    out = {}
    for o in objects:
        if o.get("kind") == "Service":
            m = o["metadata"]
            out[(m.get("namespace", ns), m["name"])] = o["spec"].get("ports", [])
    return out


def check_routes(traefik_objects, chart_objects, ns):
    services = services_of(chart_objects, ns)
    routes = [o for o in traefik_objects if o.get("kind") == "IngressRoute"]
    if not routes:
        problem("route", "the rendered Traefik resources hold no IngressRoute")
    for r in routes:
        rns = r["metadata"].get("namespace", "default")
        for route in r["spec"]["routes"]:
            for s in route.get("services", []):
                if s.get("kind", "Service") != "Service":
                    continue
                key = (s.get("namespace", rns), s["name"])
                ports = services.get(key)
                if ports is None:
                    problem("route", f"IngressRoute {rns}/{r['metadata']['name']} ({route['match']}) → "
                                     f"Service {key[0]}/{key[1]}, which the chart does not render "
                                     f"(it renders: {', '.join(n for (_, n) in sorted(services))})")
                elif not any(p.get("port") == s["port"] or p.get("name") == s["port"] for p in ports):
                    problem("route", f"IngressRoute {rns}/{r['metadata']['name']} → Service {key[1]} "
                                     f"port {s['port']}, which it does not have ({ports})")


def strict(schema):
    """A CRD schema as the API server's strict field validation applies it."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def check_schemas(objects, crds, kube_version):
    crd_schemas = {}
    for c in crds:
        if c.get("kind") != "CustomResourceDefinition":
            continue
        for v in c["spec"]["versions"]:
            api = f"{c['spec']['group']}/{v['name']}"
            crd_schemas[(api, c["spec"]["names"]["kind"])] = strict(v["schema"]["openAPIV3Schema"])
    for o in objects:
        name = f"{o.get('kind')} {o.get('metadata', {}).get('name')}"
        schema = crd_schemas.get((o.get("apiVersion"), o.get("kind")))
        if schema is not None:
            for e in jsonschema.Draft7Validator(schema).iter_errors(o):
                problem("schema", f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
            continue
        if o.get("apiVersion", "").startswith("traefik."):
            problem("schema", f"{name}: no CRD in the Traefik CRD file defines {o['apiVersion']} {o['kind']}")
            continue
        try:
            kubernetes_validate.validate(o, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            problem("schema", f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problem("schema", f"{name}: no Kubernetes {kube_version} schema for {o.get('apiVersion')} {o.get('kind')}")


def pod_specs(o):
    spec = o.get("spec", {})
    if o.get("kind") == "Pod":
        yield spec
    elif o.get("kind") == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif "template" in spec:
        yield spec["template"].get("spec", {})


def normalise(image):
    first = image.split("/")[0]
    if "/" not in image:
        return "docker.io/library/" + image
    if "." in first or ":" in first or first == "localhost":
        return image
    return "docker.io/" + image


def check_images(objects):
    for o in objects:
        for spec in pod_specs(o):
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                ref = normalise(c.get("image", ""))
                if ref.startswith("docker.io/bitnami/"):
                    problem("image", f"{o['kind']} {o['metadata']['name']} container {c['name']}: {c['image']} "
                                     "(docker.io/bitnami was emptied in 2025; bitnamilegacy holds these images)")


def check_rbac(traefik_objects, upstream):
    def grants(objs):
        out = set()
        for o in objs:
            if o.get("kind") == "ClusterRole":
                for r in o.get("rules", []):
                    for g in r.get("apiGroups", []):
                        for res in r.get("resources", []):
                            for v in r.get("verbs", []):
                                out.add((g, res, v))
        return out
    missing = grants(upstream) - grants(traefik_objects)
    for g, res, v in sorted(missing):
        problem("rbac", f"the Traefik ClusterRole does not grant {v} on {res} ({g or 'core'}), "
                        "which Traefik's kubernetes-crd-rbac.yml does")


def check_secret(objects, name, keys, host, ns):
    read = set()
    def walk(x):
        if isinstance(x, dict):
            ref = x.get("secretKeyRef")
            if isinstance(ref, dict) and ref.get("name") == name:
                read.add(ref.get("key"))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(objects)
    if not read:
        problem("secret", f"no object reads the secret {name}")
    for k in sorted(read - set(keys)):
        problem("secret", f"the chart reads `{k}` from secret {name}, which Jeeves does not write "
                          f"(it writes {', '.join(keys)})")
    if host:
        svc, port = host.rsplit(":", 1)
        ports = services_of(objects, ns).get((ns, svc))
        if ports is None or not any(str(p.get("port")) == port for p in ports):
            problem("secret", f"the bundled MongoDB URI's host {host} is not a rendered Service and port "
                              f"(Services: {', '.join(n for (_, n) in sorted(services_of(objects, ns)))})")


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--chart", required=True)
    a.add_argument("--helm-out", required=True)
    a.add_argument("--rendered", required=True)
    a.add_argument("--values", action="append", required=True)
    a.add_argument("--namespace", required=True)
    a.add_argument("--crds", required=True)
    a.add_argument("--rbac", required=True)
    a.add_argument("--kube-version", required=True)
    a.add_argument("--secret", required=True)
    a.add_argument("--secret-keys", required=True)
    a.add_argument("--mongodb-host", default="")
    args = a.parse_args()

    chart_objects = docs(open(args.helm_out).read())
    import glob, os
    traefik_objects = []
    for f in sorted(glob.glob(os.path.join(args.rendered, "traefik", "*.yaml"))):
        traefik_objects += docs(open(f).read())
    chart_values, templates = read_chart(args.chart)

    check_routes(traefik_objects, chart_objects, args.namespace)
    check_values(args.values, chart_values, templates)
    check_schemas(chart_objects + traefik_objects, docs(open(args.crds).read()), args.kube_version)
    check_images(chart_objects + traefik_objects)
    check_rbac(traefik_objects, docs(open(args.rbac).read()))
    check_secret(chart_objects, args.secret, args.secret_keys.split(","), args.mongodb_host, args.namespace)

    print(f"checked {len(chart_objects)} chart objects, {len(traefik_objects)} Traefik objects")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
