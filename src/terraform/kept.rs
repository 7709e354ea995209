//! What `jeeves down` leaves standing: the module `KEPT_MODULE` (terraform/aws's backup bucket,
//! whose archives must outlive the cluster they back up: up, backup, down, up, restore). Down
//! destroys every other resource of the root with `-target`s and leaves the kept one in the
//! state, so the next `up` finds it there and keeps enforcing its settings (versioning,
//! encryption, public access block). A root without it (terraform/lab) is destroyed whole.

use anyhow::{Result, bail};

use super::{Progress, Terraform};
use crate::process::{self, Said};

/// The module call `jeeves down` keeps.
pub const KEPT_MODULE: &str = "module.backup_bucket";

/// What a destroy that keeps `KEPT_MODULE` targets, from `terraform state list`: each other
/// managed resource (its address without an instance key) and each other module call, once.
/// `None` when the state holds nothing of the kept module: a plain destroy.
pub fn destroy_targets(state_list: &str) -> Option<Vec<String>> {
    let addresses: Vec<&str> = state_list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let kept = |a: &str| {
        a.strip_prefix(KEPT_MODULE)
            .is_some_and(|r| r.starts_with(['.', '[']))
    };
    if !addresses.iter().any(|a| kept(a)) {
        return None;
    }
    let mut targets: Vec<String> = Vec::new();
    for a in addresses.into_iter().filter(|a| !kept(a)) {
        let parts: Vec<&str> = a.split('.').collect();
        let top = match parts.as_slice() {
            ["module", name, ..] => format!("module.{}", strip_key(name)),
            ["data", ..] => continue,
            [kind, name, ..] => format!("{kind}.{}", strip_key(name)),
            _ => continue,
        };
        if !targets.contains(&top) {
            targets.push(top);
        }
    }
    Some(targets)
}

/// `worker[0]` → `worker`, `x["a"]` → `x`.
fn strip_key(name: &str) -> &str {
    name.split('[').next().unwrap_or(name)
}

impl Terraform {
    /// `terraform destroy`, but `KEPT_MODULE` stays (see the module's doc). Returns whether it
    /// was kept.
    pub async fn destroy_keeping(&self, mut on: impl FnMut(Progress<'_>)) -> Result<bool> {
        let mut list = self.command("state");
        list.arg("list");
        let out = process::run(&mut list, self.deadline(), |s| {
            if !matches!(s, Said::Stdout(_)) {
                on(Progress::Said(s))
            }
        })
        .await?;
        if !out.status.success() {
            bail!("`terraform state list` failed:\n{}", out.tail(20));
        }
        let Some(targets) = destroy_targets(&out.stdout) else {
            self.destroy(on).await?;
            return Ok(false);
        };
        if targets.is_empty() {
            return Ok(true);
        }
        let mut cmd = self.command("destroy");
        cmd.args(["-input=false", "-json", "-auto-approve"])
            .arg(self.lock_timeout())
            .args(self.var_file_args()?)
            .args(targets.iter().map(|t| format!("-target={t}")));
        self.run_json(cmd, on).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_targets_everything_but_the_kept_module() {
        let list = "data.aws_ami.ubuntu[0]\ndata.aws_caller_identity.current\naws_eip.controller\n\
            aws_instance.controller\naws_instance.worker[0]\naws_instance.worker[1]\n\
            aws_iam_role.node\nmodule.backup_bucket.aws_s3_bucket.this\n\
            module.backup_bucket.aws_s3_bucket_versioning.this\nmodule.other[\"a\"].aws_x.y\n";
        assert_eq!(
            destroy_targets(list).unwrap(),
            [
                "aws_eip.controller",
                "aws_instance.controller",
                "aws_instance.worker",
                "aws_iam_role.node",
                "module.other",
            ]
        );
        // Nothing kept in the state (terraform/lab, or the bucket not made yet): a plain destroy.
        assert_eq!(
            destroy_targets("aws_instance.controller\nmodule.backup_bucket_x.a.b\n"),
            None
        );
        // Only the kept module left: nothing to destroy.
        assert_eq!(
            destroy_targets("module.backup_bucket.aws_s3_bucket.this\n").unwrap(),
            Vec::<String>::new()
        );
    }
}
