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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_a_local_crd_bundle_becomes_absolute() {
        let mut c = Checker::for_test();
        let raw = Traefik {
            crds: "crds/traefik-v3.3.yaml".into(),
            ..Traefik::default()
        };
        let t = check(&mut c, raw, Path::new("/srv/pipelines")).unwrap();
        assert_eq!(c.keys(), Vec::<&str>::new());
        assert_eq!(t.crds, "/srv/pipelines/crds/traefik-v3.3.yaml");
        assert_eq!(t.storage_size, "1Gi");
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let mut c = Checker::for_test();
        let raw = Traefik {
            namespace: "Traefik".into(),
            web_nodeport: 30443,
            trusted_ips: vec!["10.1.0.0/16".into(), "10.1.0.0/33".into()],
            storage_class: "".into(),
            storage_size: "1 Gi".into(),
            ..Traefik::default()
        };
        check(&mut c, raw, Path::new("/srv"));
        assert_eq!(
            c.keys(),
            [
                "traefik.namespace",
                "traefik.websecure_nodeport",
                "traefik.trusted_ips[1]",
                "traefik.storage_class",
                "traefik.storage_size"
            ]
        );
        let mut c = Checker::for_test();
        let raw = Traefik {
            trusted_ips: Vec::new(),
            crds: String::new(),
            ..Traefik::default()
        };
        assert!(check(&mut c, raw, Path::new("/srv")).is_none());
        assert_eq!(c.keys(), ["traefik.crds", "traefik.trusted_ips"]);
    }
}
