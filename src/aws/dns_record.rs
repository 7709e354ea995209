//! Removing the domain's A record only while it is ours: what `jeeves down` does before
//! destroying the machines, so a record that now points elsewhere (another stack, a manual
//! change) is left alone.

use std::time::Duration;

use anyhow::Result;

use super::route53::Route53;

/// What became of the record.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// There was no A record for the domain in that zone.
    Absent { zone: String },
    /// It pointed at `ip` and was deleted (Route 53 reports the change INSYNC).
    Deleted,
    /// It points elsewhere (an alias or other addresses) and was left in place.
    LeftInPlace { points_at: String },
}

/// Deletes `domain`'s A record when it points at exactly `ip`, and waits until the deletion is
/// INSYNC (within `wait`).
pub async fn remove_if_points_at(
    route53: &Route53,
    domain: &str,
    zone_id: Option<&str>,
    ip: &str,
    comment: &str,
    wait: Duration,
) -> Result<Removal> {
    let zone = route53.find_zone(domain, zone_id).await?;
    match route53.a_record(&zone, domain).await? {
        None => Ok(Removal::Absent { zone: zone.name }),
        Some(r) if !r.alias && r.values == [ip] => {
            let change = route53.delete_a(&zone, domain, &r, comment).await?;
            route53.wait_insync(&change, wait).await?;
            Ok(Removal::Deleted)
        }
        Some(r) => Ok(Removal::LeftInPlace {
            points_at: if r.alias {
                "an alias".to_string()
            } else {
                r.values.join(",")
            },
        }),
    }
}
