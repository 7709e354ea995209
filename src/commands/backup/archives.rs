//! The archives a backup Job's log lists (`jeeves-backup: archive NAME BYTES`, printed by the
//! Job's script, `src/stages/deploy/scripts/mongodb-backup.sh`), as a table for a person.

use serde::Serialize;

/// One archive on the backup volume.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Archive {
    pub name: String,
    pub bytes: u64,
    /// When the dump started (UTC, RFC 3339), read from the name.
    pub started: Option<String>,
}

/// What `jeeves backup` reports: the Job (none for `--list`), the archive it wrote, those
/// retention removed, and every archive where they are kept, newest first.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where the archives are: `volume NAMESPACE/CLAIM` or `s3://BUCKET/PREFIX/`.
    #[serde(rename = "where")]
    pub volume: String,
    pub job: Option<String>,
    pub wrote: Option<String>,
    /// Whether the archive written is a point in time (`mongodump --oplog`, on a replica set
    /// whose oplog the backup's user may read), and the script's words on it.
    pub point_in_time: Option<bool>,
    pub consistency: Option<String>,
    pub removed: Vec<String>,
    pub archives: Vec<Archive>,
}

impl Report {
    /// From a backup Job's log (`jeeves-backup: …` lines).
    pub fn from_log(log: &str, volume: String, job: Option<String>) -> Report {
        let said = |what: &str| -> Vec<String> {
            log.lines()
                .filter_map(|l| l.trim().strip_prefix("jeeves-backup: ")?.strip_prefix(what))
                .map(str::to_string)
                .collect()
        };
        let consistency = log
            .lines()
            .filter_map(|l| l.trim().strip_prefix("jeeves-backup: "))
            .rfind(|l| l.starts_with("point in time") || l.starts_with("not a point in time"))
            .map(str::to_string);
        Report {
            volume,
            job,
            wrote: said("wrote ").pop(),
            point_in_time: consistency
                .as_deref()
                .map(|c| c.starts_with("point in time")),
            consistency,
            removed: said("removed "),
            archives: parse(log),
        }
    }

    /// For a person: what was written and removed, then the table.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(w) = &self.wrote {
            out.push_str(&format!("wrote {w}\n"));
        }
        if let Some(c) = &self.consistency {
            out.push_str(&format!("{c}\n"));
        }
        for r in &self.removed {
            out.push_str(&format!("removed {r}\n"));
        }
        out + &table(&self.archives, &self.volume)
    }
}

/// Every `jeeves-backup: archive NAME BYTES` line of a Job's log, newest first.
pub fn parse(log: &str) -> Vec<Archive> {
    let mut out: Vec<Archive> = log
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("jeeves-backup: archive ")?;
            let (name, bytes) = rest.split_once(' ')?;
            Some(Archive {
                name: name.to_string(),
                bytes: bytes.trim().parse().ok()?,
                started: started_rfc3339(name),
            })
        })
        .collect();
    out.sort_by(|a, b| b.name.cmp(&a.name));
    out
}

/// The archives among a bucket's objects (name, bytes), newest first.
pub fn from_objects(objects: Vec<(String, u64)>) -> Vec<Archive> {
    let mut out: Vec<Archive> = objects
        .into_iter()
        .filter(|(name, _)| started(name).is_some())
        .map(|(name, bytes)| Archive {
            started: started_rfc3339(&name),
            name,
            bytes,
        })
        .collect();
    out.sort_by(|a, b| b.name.cmp(&a.name));
    out
}

/// `mongodb-20261127T031500Z.archive.gz` → `2026-11-27T03:15:00Z`.
fn started_rfc3339(name: &str) -> Option<String> {
    started(name).map(|s| s.replacen(' ', "T", 1).replace(" UTC", "Z"))
}

/// `mongodb-20261127T031500Z.archive.gz` → `2026-11-27 03:15:00 UTC` (when the dump started).
pub fn started(name: &str) -> Option<String> {
    let stamp = name.strip_prefix("mongodb-")?.strip_suffix(".archive.gz")?;
    let b = stamp.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && stamp[..8]
            .bytes()
            .chain(stamp[9..15].bytes())
            .all(|c| c.is_ascii_digit());
    ok.then(|| {
        format!(
            "{}-{}-{} {}:{}:{} UTC",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    })
}

/// Bytes in binary units, one decimal (`1.5 MiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The table `jeeves backup` and `jeeves backup --list` print.
pub fn table(archives: &[Archive], volume: &str) -> String {
    let mut out = format!("{} archive(s) in {volume}, newest first:\n", archives.len());
    for a in archives {
        out.push_str(&format!(
            "  {:<40} {:<24} {:>10}\n",
            a.name,
            started(&a.name).unwrap_or_else(|| "-".into()),
            size(a.bytes)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_listing_becomes_a_table_newest_first() {
        let log = "2026-11-27T03:15:01.000+0000\twriting rocketchat.users to archive\n\
                   jeeves-backup: point in time: mongodump --oplog (replica-set rs0)\n\
                   jeeves-backup: wrote mongodb-20261127T031500Z.archive.gz\n\
                   jeeves-backup: removed mongodb-20261120T031500Z.archive.gz\n\
                   jeeves-backup: archive mongodb-20261126T031500Z.archive.gz 1048576\n\
                   jeeves-backup: archive mongodb-20261127T031500Z.archive.gz 1572864\n\
                   jeeves-backup: archive broken-line\n\
                   jeeves-backup: 2 archive(s) in /backup\n";
        let a = parse(log);
        assert_eq!(
            a,
            [
                Archive {
                    name: "mongodb-20261127T031500Z.archive.gz".into(),
                    bytes: 1_572_864,
                    started: Some("2026-11-27T03:15:00Z".into()),
                },
                Archive {
                    name: "mongodb-20261126T031500Z.archive.gz".into(),
                    bytes: 1_048_576,
                    started: Some("2026-11-26T03:15:00Z".into()),
                },
            ]
        );
        let r = Report::from_log(log, "volume ns/v".into(), Some("ns/j".into()));
        assert_eq!(
            r.wrote.as_deref(),
            Some("mongodb-20261127T031500Z.archive.gz")
        );
        assert_eq!(r.removed, ["mongodb-20261120T031500Z.archive.gz"]);
        assert_eq!(r.point_in_time, Some(true));
        assert!(
            r.text().starts_with(
                "wrote mongodb-20261127T031500Z.archive.gz\npoint in time: mongodump --oplog (replica-set rs0)\nremoved mongodb-20261120T031500Z.archive.gz\n2 archive(s) in volume ns/v"
            ),
            "{}",
            r.text()
        );
        let t = table(&a, "volume psautoinfra/rocketchat-mongodb-backup");
        assert!(t.starts_with("2 archive(s) in volume psautoinfra/rocketchat-mongodb-backup"));
        assert!(
            t.contains("2026-11-27 03:15:00 UTC") && t.contains("1.5 MiB"),
            "{t}"
        );
        assert_eq!(started("mongodb-2026.archive.gz"), None);
        assert_eq!(size(512), "512 B");
        let listed = from_objects(vec![
            ("mongodb-20261126T031500Z.archive.gz".into(), 3),
            ("notes.txt".into(), 1),
            ("mongodb-20261127T031500Z.archive.gz".into(), 4),
        ]);
        assert_eq!(
            listed.iter().map(|a| a.bytes).collect::<Vec<_>>(),
            [4, 3],
            "{listed:?}"
        );
        assert_eq!(size(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }
}
