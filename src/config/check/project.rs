//! `[project]`: the project's name, its AWS region and tags, and the templates directory.

use std::path::{Path, PathBuf};

use super::Checker;
use crate::config::{ProjectSettings, pipeline, validate};

/// The section, and the templates directory (an absolute path to a directory that exists).
pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Project,
    base: &Path,
) -> Option<(ProjectSettings, PathBuf)> {
    let name = c.check("project.name", validate::project_name(&raw.name));
    for (k, v) in &raw.tags {
        let ok = !k.is_empty() && k.len() <= 128 && v.len() <= 256 && !k.starts_with("aws:");
        if !ok {
            c.check::<()>(&format!("project.tags.{k}"), Err("tag keys are 1–128 characters, values at most 256, and keys may not start with `aws:`".into()));
        }
    }
    let templates = c.local_path("project.templates", &raw.templates, base, true);
    let region = if raw.region.is_empty() {
        Some(None)
    } else {
        c.check("project.region", validate::aws_region(&raw.region))
            .map(Some)
    };
    Some((
        ProjectSettings {
            name: name?,
            tags: raw.tags,
            region: region?,
        },
        templates?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_aws_rules() {
        let dir = tempfile::tempdir().unwrap();
        let raw = |tags: &[(&str, &str)]| pipeline::Project {
            name: "demo".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            templates: ".".into(),
            region: String::new(),
        };
        let mut c = Checker::for_test();
        let (project, templates) = check(
            &mut c,
            raw(&[("team", "chat"), ("cost-center", "")]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.keys(), Vec::<&str>::new());
        assert_eq!(project.tags.len(), 2);
        assert_eq!(templates, dir.path().join("."));

        let long = "v".repeat(257);
        let mut c = Checker::for_test();
        check(
            &mut c,
            raw(&[("aws:created-by", "me"), ("owner", &long), ("", "x")]),
            dir.path(),
        );
        assert_eq!(
            c.keys(),
            [
                "project.tags.",
                "project.tags.aws:created-by",
                "project.tags.owner"
            ]
        );
    }
}
