//! Every IngressRoute backend must be a Service the cluster has, with the port the route names.
//! Traefik answers 404 for a route whose Service does not exist, and nothing else fails: the
//! release deploys, the pods run, and the site is down. So the stage checks it once the release
//! is up, from the live objects (the IngressRoutes as applied, the Services as the chart made
//! them).

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::traefik::Manifests;
use crate::kube::{Tools, succeeded};
use crate::process::Output;
use crate::stage::StageContext;

/// One `spec.routes[].services[]` entry of an IngressRoute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    /// `namespace/name` of the IngressRoute.
    pub route: String,
    pub namespace: String,
    pub service: String,
    /// A port number or a port name, as Traefik accepts either.
    pub port: String,
}

/// The objects of a `kubectl get -o json` answer: a List's items, or the one object.
pub fn items(list: &Value) -> Vec<&Value> {
    match list["items"].as_array() {
        Some(items) => items.iter().collect(),
        None if list.is_object() => vec![list],
        None => Vec::new(),
    }
}

/// The Kubernetes Services the IngressRoutes among `objects` send traffic to (`kind` omitted or
/// `Service`; TraefikServices are Traefik's own and not checked here).
pub fn backends(objects: &Value) -> Vec<Backend> {
    let mut out = BTreeSet::new();
    for o in items(objects)
        .into_iter()
        .filter(|o| o["kind"] == "IngressRoute")
    {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("default");
        let route = format!("{ns}/{}", o["metadata"]["name"].as_str().unwrap_or("?"));
        for r in o["spec"]["routes"].as_array().into_iter().flatten() {
            for svc in r["services"].as_array().into_iter().flatten() {
                if svc["kind"].as_str().unwrap_or("Service") != "Service" {
                    continue;
                }
                let port = match &svc["port"] {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                out.insert(Backend {
                    route: route.clone(),
                    namespace: svc["namespace"].as_str().unwrap_or(ns).to_string(),
                    service: svc["name"].as_str().unwrap_or_default().to_string(),
                    port,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// The namespaces whose Services must be read.
pub fn namespaces(backends: &[Backend]) -> BTreeSet<&str> {
    backends.iter().map(|b| b.namespace.as_str()).collect()
}

/// A line per backend that does not resolve, naming what does exist; empty when all resolve.
/// `services`: the `kubectl get services -n NS -o json` lists of every namespace involved.
pub fn unresolved(backends: &[Backend], services: &[Value]) -> Vec<String> {
    let all: Vec<&Value> = services.iter().flat_map(items).collect();
    let describe = |s: &Value| {
        let ports: Vec<String> = s["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["port"].to_string())
            .collect();
        format!(
            "{}:{}",
            s["metadata"]["name"].as_str().unwrap_or("?"),
            ports.join(",")
        )
    };
    let mut out = Vec::new();
    for b in backends {
        let in_ns: Vec<&&Value> = all
            .iter()
            .filter(|s| s["metadata"]["namespace"].as_str() == Some(b.namespace.as_str()))
            .collect();
        let found = in_ns
            .iter()
            .find(|s| s["metadata"]["name"].as_str() == Some(b.service.as_str()));
        let problem = match found {
            None => "which does not exist",
            Some(s) => {
                let has_port = s["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| {
                        p["port"].as_u64().is_some_and(|n| n.to_string() == b.port)
                            || p["name"].as_str() == Some(b.port.as_str())
                    });
                if has_port {
                    continue;
                }
                "which has no such port"
            }
        };
        let existing: Vec<String> = in_ns.iter().map(|s| describe(s)).collect();
        out.push(format!(
            "IngressRoute {} sends traffic to Service {}/{} port {}, {problem} (Services in {}: {})",
            b.route,
            b.namespace,
            b.service,
            b.port,
            b.namespace,
            if existing.is_empty() {
                "none".to_string()
            } else {
                existing.join(" ")
            }
        ));
    }
    out
}

/// `kubectl get services -n NS -o json` for each namespace, all at once.
pub async fn read_services(
    tools: &Tools,
    cx: &StageContext<'_>,
    namespaces: &BTreeSet<String>,
) -> Vec<(String, Result<Output>)> {
    let reads = namespaces.iter().map(|ns| async move {
        let out = tools
            .kubectl(cx, &["get", "services", "-n", ns, "-o", "json"])
            .await;
        (ns.clone(), out)
    });
    crate::kube::all(reads.collect()).await
}

/// Every IngressRoute backend among the applied manifests is a live Service with the port the
/// route names; otherwise an error naming each broken one.
pub async fn check(tools: &Tools, cx: &StageContext<'_>, m: &Manifests) -> Result<()> {
    if !m.routes {
        return Ok(());
    }
    let live = super::traefik::read_live(tools, cx, m).await?;
    check_live(tools, cx, m, live, Vec::new()).await
}

/// `check` on the live objects already read (`traefik::read_live`), with the Services of the
/// namespaces read so far (`read_services`); any other namespace is read here.
pub async fn check_live(
    tools: &Tools,
    cx: &StageContext<'_>,
    m: &Manifests,
    live: Output,
    mut read: Vec<(String, Result<Output>)>,
) -> Result<()> {
    if !m.routes {
        return Ok(());
    }
    let json = |out: Output, what: &str| -> Result<Value> {
        let out = succeeded(out, what)?;
        serde_json::from_str(&out.stdout).with_context(|| format!("{what}: the answer is not JSON"))
    };
    let applied = json(live, "reading the applied IngressRoutes")?;
    let backends = backends(&applied);
    let mut services = Vec::new();
    for ns in namespaces(&backends) {
        let out = match read.iter().position(|(n, _)| n == ns) {
            Some(i) => read.swap_remove(i).1?,
            None => {
                tools
                    .kubectl(cx, &["get", "services", "-n", ns, "-o", "json"])
                    .await?
            }
        };
        services.push(json(out, &format!("listing the Services in {ns}"))?);
    }
    let broken = unresolved(&backends, &services);
    if !broken.is_empty() {
        bail!(
            "Traefik would answer 404: {}. The IngressRoute template (templates/traefik/) and the chart disagree on the Service; `jeeves render` shows what Jeeves applies",
            broken.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route() -> Value {
        json!({"kind": "List", "items": [
            {"kind": "Namespace", "metadata": {"name": "app"}},
            {"kind": "IngressRoute", "metadata": {"name": "rc", "namespace": "app"}, "spec": {"routes": [
                {"services": [{"name": "rc-ddp-streamer", "port": 3000}]},
                {"services": [{"name": "rc-rocketchat", "port": 80}, {"name": "tsvc", "kind": "TraefikService"}]},
            ]}}
        ]})
    }

    fn services(names: &[(&str, u16)]) -> Value {
        json!({"kind": "List", "items": names.iter().map(|(n, p)| json!({
            "kind": "Service", "metadata": {"name": n, "namespace": "app"},
            "spec": {"ports": [{"name": "http", "port": p}]}
        })).collect::<Vec<_>>()})
    }

    #[test]
    fn backends_are_read_from_the_ingressroutes() {
        let b = backends(&route());
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].service, "rc-rocketchat");
        assert_eq!(b[1].port, "80");
        assert_eq!(namespaces(&b).into_iter().collect::<Vec<_>>(), ["app"]);
    }

    #[test]
    fn a_missing_service_or_port_is_named_with_what_exists() {
        let b = backends(&route());
        let ok = services(&[("rc-rocketchat", 80), ("rc-ddp-streamer", 3000)]);
        assert!(unresolved(&b, &[ok]).is_empty());
        let wrong = services(&[("rocketchat", 80), ("rc-ddp-streamer", 3001)]);
        let lines = unresolved(&b, &[wrong]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].contains("Service app/rc-rocketchat port 80, which does not exist")
                && lines[1].contains("rocketchat:80"),
            "{}",
            lines[1]
        );
        assert!(lines[0].contains("which has no such port"), "{}", lines[0]);
        // A port may be named.
        let mut named = backends(&route());
        named[1].port = "http".into();
        named.truncate(2);
        assert!(unresolved(&named[1..], &[services(&[("rc-rocketchat", 80)])]).is_empty());
    }
}
