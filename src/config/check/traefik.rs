//! `[traefik]`: the CRD bundle, image, namespace, NodePorts, replicas, trusted networks and
//! storage of the Traefik the deploy stage installs.

use std::path::Path;

use super::Checker;
use crate::config::{Traefik, validate};

/// A local CRD bundle is kept as an absolute path, like every other local path; whether it
/// exists is a preflight check of runs that deploy (`preflight.rs`).
pub(super) fn check(c: &mut Checker, raw: Traefik, base: &Path) -> Option<Traefik> {
    let crds = if raw.crds.starts_with("https://") {
        Some(raw.crds.clone())
    } else {
        c.local_path("traefik.crds", &raw.crds, base, false)
            .map(|p| p.display().to_string())
    };
    c.check("traefik.image", validate::pinned_image(&raw.image));
    c.check("traefik.namespace", validate::k8s_name(&raw.namespace, 63));
    c.check(
        "traefik.web_nodeport",
        validate::node_port(raw.web_nodeport),
    );
    c.check(
        "traefik.websecure_nodeport",
        validate::node_port(raw.websecure_nodeport),
    );
    if raw.web_nodeport == raw.websecure_nodeport {
        c.check::<()>(
            "traefik.websecure_nodeport",
            Err("must differ from traefik.web_nodeport".into()),
        );
    }
    c.check("traefik.replicas", validate::count(raw.replicas, 1, 32));
    if raw.trusted_ips.is_empty() {
        c.check::<()>(
            "traefik.trusted_ips",
            Err("is empty: Traefik would drop HAProxy's X-Forwarded-For and -Proto; list the node and pod networks".into()),
        );
    }
    for (i, net) in raw.trusted_ips.iter().enumerate() {
        c.check(
            &format!("traefik.trusted_ips[{i}]"),
            validate::ipv4_cidr(net),
        );
    }
    c.check(
        "traefik.storage_class",
        validate::k8s_name(&raw.storage_class, 253),
    );
    if !raw
        .storage_size
        .chars()
        .next()
        .is_some_and(|ch| ch.is_ascii_digit())
        || !raw
            .storage_size
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.')
    {
        c.check::<()>(
            "traefik.storage_size",
            Err(format!(
                "`{}` is not a Kubernetes quantity (e.g. 1Gi)",
                raw.storage_size
            )),
        );
    }
    Some(Traefik { crds: crds?, ..raw })
}
