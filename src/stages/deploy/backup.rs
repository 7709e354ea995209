//! The MongoDB backup objects (`templates/backup/`, when the pipeline has `[backup]`) are
//! rendered and applied with the Traefik resources (`traefik.rs`); what they need from here is
//! the Job's script, kept as a `.sh` file (shellchecked) and set in the CronJob.

/// Where the archives' volume is mounted in the backup Job's container.
pub const BACKUP_MOUNT_PATH: &str = "/backup";

/// How late a scheduled backup may start (the CronJob's `startingDeadlineSeconds`): a run missed
/// while the stack was stopped is skipped rather than started as the cluster boots, before
/// MongoDB is up (see the template).
pub const BACKUP_STARTING_DEADLINE_SECONDS: u64 = 300;

/// `sh -c SCRIPT mongodb-backup dump DIR KEEP DEADLINE_SECONDS | list DIR` (see the script's
/// header).
pub const BACKUP_SCRIPT: &str = include_str!("scripts/mongodb-backup.sh");

/// `sh -c SCRIPT mongodb-backup-upload upload DIR BUCKET PREFIX KEEP` (`destination = "s3"`).
pub const UPLOAD_SCRIPT: &str = include_str!("scripts/mongodb-backup-upload.sh");

/// The script indented for the YAML block scalar it goes in (`- |` at 16 columns).
pub fn backup_script_indented() -> String {
    indented(BACKUP_SCRIPT)
}

/// The upload script, indented likewise.
pub fn upload_script_indented() -> String {
    indented(UPLOAD_SCRIPT)
}

fn indented(script: &str) -> String {
    script
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{:18}{l}", "")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kubernetes expands `$$` to `$`, and `$(NAME)` of the container's variables, in command
    /// and args (the kubelet's `expansion.Expand`): the script must hold neither.
    #[test]
    fn the_script_survives_kubernetes_variable_expansion() {
        assert!(!BACKUP_SCRIPT.contains("$$") && !UPLOAD_SCRIPT.contains("$$"));
        assert!(!BACKUP_SCRIPT.contains("$(MONGO_URI)"));
        // The URI reaches mongodump through its --config file, never its command line.
        assert!(BACKUP_SCRIPT.contains("mongodump --config=\"$config\""));
        assert!(!BACKUP_SCRIPT.contains("--uri"));
    }
}
