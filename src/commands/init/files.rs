//! The files `jeeves init` writes, embedded in the binary from the repository at build time, so
//! that an installed `jeeves` needs no checkout. A unit test keeps this list equal to the
//! directories it copies.

/// (path in the new directory, contents). The pipeline file is not here: `init` edits it.
pub const FILES: &[(&str, &str)] = &[
    (
        "templates/backup/mongodb-backup.yaml.hbs",
        include_str!("../../../templates/backup/mongodb-backup.yaml.hbs"),
    ),
    (
        "templates/haproxy.cfg.hbs",
        include_str!("../../../templates/haproxy.cfg.hbs"),
    ),
    (
        "templates/maintenance/image-prune.yaml.hbs",
        include_str!("../../../templates/maintenance/image-prune.yaml.hbs"),
    ),
    (
        "templates/mongodb/mongodbcommunity.yaml.hbs",
        include_str!("../../../templates/mongodb/mongodbcommunity.yaml.hbs"),
    ),
    (
        "templates/mongodb/operator-values.yaml.hbs",
        include_str!("../../../templates/mongodb/operator-values.yaml.hbs"),
    ),
    (
        "templates/rocketchat-values.yaml.hbs",
        include_str!("../../../templates/rocketchat-values.yaml.hbs"),
    ),
    (
        "templates/traefik/00-namespaces.yaml.hbs",
        include_str!("../../../templates/traefik/00-namespaces.yaml.hbs"),
    ),
    (
        "templates/traefik/10-rbac.yaml.hbs",
        include_str!("../../../templates/traefik/10-rbac.yaml.hbs"),
    ),
    (
        "templates/traefik/20-config.yaml.hbs",
        include_str!("../../../templates/traefik/20-config.yaml.hbs"),
    ),
    (
        "templates/traefik/30-storage.yaml.hbs",
        include_str!("../../../templates/traefik/30-storage.yaml.hbs"),
    ),
    (
        "templates/traefik/40-deployment.yaml.hbs",
        include_str!("../../../templates/traefik/40-deployment.yaml.hbs"),
    ),
    (
        "templates/traefik/50-service.yaml.hbs",
        include_str!("../../../templates/traefik/50-service.yaml.hbs"),
    ),
    (
        "templates/traefik/60-ingressroute.yaml.hbs",
        include_str!("../../../templates/traefik/60-ingressroute.yaml.hbs"),
    ),
    (
        "terraform/aws/backup.tf",
        include_str!("../../../terraform/aws/backup.tf"),
    ),
    (
        "terraform/aws/backup_bucket/main.tf",
        include_str!("../../../terraform/aws/backup_bucket/main.tf"),
    ),
    (
        "terraform/aws/instances.tf",
        include_str!("../../../terraform/aws/instances.tf"),
    ),
    (
        "terraform/aws/network.tf",
        include_str!("../../../terraform/aws/network.tf"),
    ),
    (
        "terraform/aws/outputs.tf",
        include_str!("../../../terraform/aws/outputs.tf"),
    ),
    (
        "terraform/aws/security.tf",
        include_str!("../../../terraform/aws/security.tf"),
    ),
    (
        "terraform/aws/variables.tf",
        include_str!("../../../terraform/aws/variables.tf"),
    ),
    (
        "terraform/aws/versions.tf",
        include_str!("../../../terraform/aws/versions.tf"),
    ),
];

/// The repository's AWS pipeline, which `init` fills in.
pub const PIPELINE: &str = include_str!("../../../pipelines/rocketchat.toml");
pub const PIPELINE_PATH: &str = "pipelines/rocketchat.toml";

/// The repository's `.env.example`, which `init` fills in as `.env`.
pub const ENV_EXAMPLE: &str = include_str!("../../../.env.example");

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file under the copied directories is embedded, and nothing else.
    #[test]
    fn the_embedded_list_matches_the_repository() {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != ".terraform") {
                        walk(&path, root, out);
                    }
                } else if !path.to_string_lossy().contains("tfstate") {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for dir in ["templates", "terraform/aws"] {
            walk(&root.join(dir), root, &mut on_disk);
        }
        on_disk.sort();
        let embedded: Vec<String> = super::FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            embedded, on_disk,
            "add the new file to src/commands/init/files.rs"
        );
    }
}
