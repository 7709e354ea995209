//! Setting one value in the embedded pipeline file or `.env`, keeping every comment: the files
//! stay the documented ones, only the values change.

use anyhow::{Result, bail};

/// Sets `key` in `[section]` of a TOML text to the TOML value `value` (already quoted), keeping
/// the line's trailing comment. The key must be there exactly once.
pub fn set_toml(text: &str, section: &str, key: &str, value: &str) -> Result<String> {
    let mut current = String::new();
    let mut hits = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                current = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
                return line.to_string();
            }
            let Some((k, rest)) = line.split_once('=') else {
                return line.to_string();
            };
            if current != section || k.trim() != key || trimmed.starts_with('#') {
                return line.to_string();
            }
            hits += 1;
            let comment = rest
                .find(" #")
                .map(|i| rest[i..].trim_start())
                .unwrap_or("");
            let assignment = format!("{} = {value}", k.trim_end());
            if comment.is_empty() {
                assignment
            } else {
                format!("{assignment:<32} {comment}")
            }
        })
        .collect();
    if hits != 1 {
        bail!("the embedded pipeline has {hits} `{key}` in [{section}] (a Jeeves bug)");
    }
    Ok(lines.join("\n") + "\n")
}

/// Sets `KEY=value` in a dotenv text: the line `KEY=…`, or a commented `# KEY=…`, else a new
/// line at the end.
pub fn set_env(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}=");
    let commented = format!("# {key}=");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&prefix))
        .or_else(|| lines.iter().position(|l| l.starts_with(&commented)));
    match at {
        Some(i) => lines[i] = format!("{key}={value}"),
        None => lines.push(format!("{key}={value}")),
    }
    lines.join("\n") + "\n"
}

/// Uncomments the commented-out `# [section]` and the commented lines under it, up to the first
/// line that is not a comment (the block ends at a blank line). Exactly one such block.
pub fn uncomment_section(text: &str, section: &str) -> Result<String> {
    let header = format!("# [{section}]");
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == header).collect();
    let [start] = starts[..] else {
        bail!(
            "the embedded pipeline has {} `{header}` (a Jeeves bug)",
            starts.len()
        );
    };
    let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
    let mut i = start;
    while i < lines.len() && lines[i].starts_with("# ") {
        out.push(lines[i]["# ".len()..].to_string());
        i += 1;
    }
    out.extend(lines[i..].iter().map(|l| l.to_string()));
    Ok(out.join("\n") + "\n")
}

/// A TOML basic string.
pub fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_values_in_their_section_and_keeps_comments() {
        let text = "[a]\nregion = \"x\" # the region\n[b]\nregion = \"y\"\n# region = \"z\"\n";
        let out = set_toml(text, "a", "region", "\"eu-north-1\"").unwrap();
        assert!(out.contains("region = \"eu-north-1\""), "{out}");
        assert!(out.contains("# the region"), "{out}");
        assert!(out.contains("[b]\nregion = \"y\""), "{out}");
        assert!(set_toml(text, "c", "region", "1").is_err());

        let block = "# Uncomment to enable.\n# [b]\n# k = 1   # one\n\n# c = 2\n";
        assert_eq!(
            uncomment_section(block, "b").unwrap(),
            "# Uncomment to enable.\n[b]\nk = 1   # one\n\n# c = 2\n"
        );
        assert!(uncomment_section(block, "c").is_err());

        let env = "A=\n# B=example\n";
        assert_eq!(set_env(env, "A", "1"), "A=1\n# B=example\n");
        assert_eq!(set_env(env, "B", "2"), "A=\nB=2\n");
        assert_eq!(set_env(env, "C", "3"), "A=\n# B=example\nC=3\n");
    }
}
