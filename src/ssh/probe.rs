//! Probe scripts: one shell script per host prints every fact a stage needs in one round trip,
//! in sections opened by `@name` lines and closed by `@end`. A probe cut short (no `@end`) must
//! not pass for a host with nothing on it, so it is an error.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use super::{RemoteCommand, SshSession};

/// A finished probe's lines, by section.
#[derive(Debug, Default)]
pub struct Sections(BTreeMap<String, Vec<String>>);

impl Sections {
    /// Reads probe output; `names` are the sections the script prints. `None` without `@end`.
    pub fn parse(out: &str, names: &[&str]) -> Option<Sections> {
        let mut sections = BTreeMap::<String, Vec<String>>::new();
        let mut current: Option<&str> = None;
        for line in out.lines() {
            match line.strip_prefix('@') {
                Some("end") => return Some(Sections(sections)),
                Some(name) if names.contains(&name) => {
                    sections.entry(name.to_string()).or_default();
                    current = Some(name);
                }
                _ => {
                    if let Some(name) = current {
                        sections
                            .entry(name.to_string())
                            .or_default()
                            .push(line.to_string());
                    }
                }
            }
        }
        None
    }

    /// The lines of one section (none when the probe did not print it).
    pub fn lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.get(name).into_iter().flatten().map(String::as_str)
    }

    /// A section's lines trimmed, blank ones left out: its values, one per line.
    pub fn values(&self, name: &str) -> impl Iterator<Item = String> {
        self.lines(name)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
    }
}

/// Runs a probe script and reads its sections; an unfinished probe fails with its output.
pub fn run(session: &SshSession, cmd: &RemoteCommand, names: &[&str]) -> Result<Sections> {
    let out = session.exec(cmd, &mut |_, _| {})?;
    Sections::parse(&out.stdout, names).ok_or_else(|| {
        anyhow!(
            "probing {} failed (status {}):\n{}",
            session.target.name,
            out.status,
            out.tail(10)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_hold_their_lines_until_end() {
        let s = Sections::parse("noise\n@a\n1\n@other\n2\n@b\n@end\n3\n", &["a", "b"]).unwrap();
        // `@other` is not a section of this probe: an ordinary line of `a`.
        assert_eq!(s.lines("a").collect::<Vec<_>>(), ["1", "@other", "2"]);
        assert_eq!(s.lines("b").count(), 0);
        assert_eq!(s.lines("missing").count(), 0);
        let v = Sections::parse("@a\n  x \n\n y\n@end\n", &["a"]).unwrap();
        assert_eq!(v.values("a").collect::<Vec<_>>(), ["x", "y"]);
        assert!(Sections::parse("@a\n1\n", &["a"]).is_none(), "no @end");
    }
}
