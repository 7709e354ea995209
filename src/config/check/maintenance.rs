//! `[maintenance]`: the optional image-prune DaemonSet: how often each node prunes, and the
//! image it runs in (pinned by tag or digest, as every image Jeeves deploys).

use super::Checker;
use crate::config::{MaintenanceSettings, pipeline, validate};

pub(super) fn check(c: &mut Checker, raw: pipeline::Maintenance) -> Option<MaintenanceSettings> {
    let every = c.check(
        "maintenance.image_prune_every",
        validate::nonzero_duration(&raw.image_prune_every),
    );
    let image = c.check(
        "maintenance.image_prune_image",
        validate::pinned_image(&raw.image_prune_image),
    );
    Some(MaintenanceSettings {
        image_prune: raw.image_prune,
        image_prune_every: every?,
        image_prune_image: image?,
    })
}
