//! Pure checks on single values. Each returns the reason a value is wrong, phrased to follow
//! "`key`: ". Remote commands quote every argument anyway; these checks exist so that a typo is
//! caught before anything runs, with an error that says what was expected.

use std::time::Duration;

pub use super::cron::cron_schedule;

/// A DNS name per RFC 1123: at least two labels, each 1–63 of `[a-z0-9-]` not starting or ending
/// with `-`, at most 253 characters, and a top-level label that is not all digits.
pub fn domain(value: &str) -> Result<String, String> {
    let v = value.trim_end_matches('.').to_ascii_lowercase();
    if v.is_empty() {
        return Err(
            "is empty; set it in the pipeline file or the DOMAIN environment variable".into(),
        );
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "`{value}` is not a valid domain name: character {c:?} is not allowed (letters, digits, `-` and `.` only)"
        ));
    }
    if v.len() > 253 {
        return Err(format!("`{value}` is longer than 253 characters"));
    }
    let labels: Vec<&str> = v.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "`{value}` is not a fully qualified domain name (needs at least two labels, e.g. chat.example.com)"
        ));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(format!(
                "`{value}` is not a valid domain name: it has an empty label"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "`{value}` is not a valid domain name: label `{label}` is longer than 63 characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{value}` is not a valid domain name: label `{label}` starts or ends with `-`"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "`{value}` looks like an IP address, not a domain name"
        ));
    }
    Ok(v)
}

/// An e-mail address for the ACME account: a conservative local part and a valid domain.
pub fn email(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(
            "is empty; set it in the pipeline file or the CERT_EMAIL environment variable".into(),
        );
    }
    let Some((local, host)) = value.rsplit_once('@') else {
        return Err(format!("`{value}` is not an e-mail address (no `@`)"));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    if !local_ok {
        return Err(format!(
            "`{value}` is not an e-mail address: the part before `@` may hold letters, digits and `._%+-`"
        ));
    }
    domain(host).map_err(|e| format!("`{value}` is not an e-mail address: {e}"))?;
    Ok(value.to_string())
}

pub fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("`{value}` is not a duration like 90s, 10m or 30days: {e}"))
}

pub fn nonzero_duration(value: &str) -> Result<Duration, String> {
    let d = duration(value)?;
    if d.is_zero() {
        return Err(format!("`{value}` must be longer than zero"));
    }
    Ok(d)
}

/// A Kubernetes quantity for a volume's size: digits, then an optional suffix (`10Gi`, `500M`).
pub fn quantity(value: &str) -> Result<String, String> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &value[digits.len()..];
    let ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && ["", "Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P"].contains(&suffix);
    if !ok {
        return Err(format!(
            "`{value}` is not a Kubernetes quantity (e.g. 10Gi)"
        ));
    }
    Ok(value.to_string())
}

pub fn port(value: u16) -> Result<u16, String> {
    if value == 0 {
        return Err("0 is not a usable port (1–65535)".into());
    }
    Ok(value)
}

/// Kubernetes' default NodePort range.
pub fn node_port(value: u16) -> Result<u16, String> {
    if !(30000..=32767).contains(&value) {
        return Err(format!("{value} is outside the NodePort range 30000–32767"));
    }
    Ok(value)
}

pub fn count(value: u32, min: u32, max: u32) -> Result<u32, String> {
    if !(min..=max).contains(&value) {
        return Err(format!("{value} is outside the allowed range {min}–{max}"));
    }
    Ok(value)
}

/// A Kubernetes object name / namespace (RFC 1123 label), at most `max` characters.
pub fn k8s_name(value: &str, max: usize) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !ok {
        return Err(format!(
            "`{value}` is not a valid name (lowercase letters, digits and `-`, at most {max} characters, not starting or ending with `-`)"
        ));
    }
    Ok(value.to_string())
}

/// The project name: used in state paths and resource tags.
pub fn project_name(value: &str) -> Result<String, String> {
    k8s_name(value, 40)
}

/// An AWS region name: `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`.
pub fn aws_region(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not an AWS region name like eu-west-1"
        ))
    }
}

/// A Unix user name as `useradd` accepts it.
pub fn unix_user(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && !value.starts_with('-');
    if !ok {
        return Err(format!("`{value}` is not a valid user name"));
    }
    Ok(value.to_string())
}

/// An absolute path on a remote host, without anything a shell or config file would trip over.
pub fn remote_path(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err(format!("`{value}` must be an absolute path"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._-".contains(*c)))
    {
        return Err(format!(
            "`{value}` contains {c:?}; use letters, digits and `/._-` only"
        ));
    }
    if value.split('/').any(|part| part == "..") {
        return Err(format!("`{value}` must not contain `..`"));
    }
    Ok(value.to_string())
}

pub fn ipv4(value: &str) -> Result<String, String> {
    value
        .parse::<std::net::Ipv4Addr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("`{value}` is not an IPv4 address"))
}

/// An IPv4 network in CIDR notation (`10.1.0.0/16`), or a single address.
pub fn ipv4_cidr(value: &str) -> Result<String, String> {
    let (ip, bits) = value.split_once('/').unwrap_or((value, "32"));
    match (ip.parse::<std::net::Ipv4Addr>(), bits.parse::<u8>()) {
        (Ok(_), Ok(b)) if b <= 32 => Ok(value.to_string()),
        _ => Err(format!(
            "`{value}` is not an IPv4 network (e.g. 10.1.0.0/16)"
        )),
    }
}

pub fn https_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .ok_or_else(|| format!("`{value}` must be an https:// URL"))?;
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '"')
    {
        return Err(format!("`{value}` is not a valid URL"));
    }
    Ok(value.to_string())
}

/// A container image reference pinned to a tag or digest other than `latest`.
pub fn pinned_image(value: &str) -> Result<String, String> {
    let name_part = value.rsplit('/').next().unwrap_or(value);
    let pinned = value.contains('@')
        || name_part
            .split_once(':')
            .is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
    if !pinned || value.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{value}` must name a pinned tag or digest (e.g. traefik:v3.3.4), not `latest`"
        ));
    }
    Ok(value.to_string())
}

/// A chart version pinned to an exact release (no ranges, no `latest`).
pub fn pinned_version(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == 'v')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
    if !ok {
        return Err(format!(
            "`{value}` must be an exact chart version such as 6.25.1 (no ranges, no `latest`)"
        ));
    }
    Ok(value.to_string())
}

/// A Route 53 hosted zone id, with or without the `/hostedzone/` prefix.
pub fn zone_id(value: &str) -> Result<String, String> {
    let id = value.trim_start_matches("/hostedzone/");
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "`{value}` is not a hosted zone id (e.g. Z0123456789ABCDEFGHIJ)"
        ));
    }
    Ok(id.to_string())
}

/// A MicroK8s snap channel such as `1.32/stable` or `latest/edge`.
pub fn snap_channel(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "./-".contains(c));
    if !ok {
        return Err(format!(
            "`{value}` is not a snap channel (e.g. 1.32/stable)"
        ));
    }
    Ok(value.to_string())
}

/// A MicroK8s addon name, optionally with arguments after `:` (e.g. `metallb:10.0.0.1-10.0.0.9`).
pub fn addon(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-.,/=".contains(c));
    if !ok {
        return Err(format!(
            "`{value}` is not an addon name (e.g. dns, hostpath-storage)"
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_that_pass() {
        for d in ["chat.example.com", "Chat.Example.COM.", "a-b.c1.io", "x.y"] {
            assert!(domain(d).is_ok(), "{d}");
        }
        assert_eq!(domain("Chat.Example.COM.").unwrap(), "chat.example.com");
    }

    #[test]
    fn domains_that_fail() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", ["abcdefghij"; 25].join("."));
        for d in [
            "",
            "localhost",
            "chat..example.com",
            "-chat.example.com",
            "chat-.example.com",
            "chat.example.com;rm -rf /",
            "$(touch /tmp/pwned).example.com",
            "chat example.com",
            "chat.example.com\n",
            "`id`.example.com",
            "10.0.0.1",
            "chat_1.example.com",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(domain(d).is_err(), "{d:?} should be rejected");
        }
    }

    #[test]
    fn emails() {
        assert!(email("ops+acme@example.com").is_ok());
        for e in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "ops@localhost",
            "o ps@example.com",
            "a;b@example.com",
            ".ops@example.com",
        ] {
            assert!(email(e).is_err(), "{e:?} should be rejected");
        }
    }

    #[test]
    fn durations_ports_counts() {
        assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
        assert!(duration("ten minutes").is_err());
        assert!(nonzero_duration("0s").is_err());
        assert!(port(0).is_err());
        assert!(node_port(80).is_err());
        assert!(node_port(30080).is_ok());
        assert!(count(0, 1, 256).is_err());
        assert!(count(16, 1, 256).is_ok());
    }

    #[test]
    fn names_paths_images() {
        assert!(k8s_name("psautoinfra", 63).is_ok());
        assert!(k8s_name("Bad_Name", 63).is_err());
        assert!(remote_path("/etc/haproxy/certs/chat.example.com.pem").is_ok());
        assert!(remote_path("etc/haproxy.cfg").is_err());
        assert!(remote_path("/etc/$(id)/x").is_err());
        assert!(remote_path("/etc/../root").is_err());
        assert!(pinned_image("traefik:v3.3.4").is_ok());
        assert!(pinned_image("registry:5000/traefik@sha256:abc").is_ok());
        assert!(pinned_image("traefik").is_err());
        assert!(pinned_image("traefik:latest").is_err());
        assert!(pinned_image("registry:5000/traefik").is_err());
        assert!(pinned_version("6.25.1").is_ok());
        assert!(pinned_version("^6.0").is_err());
        assert!(zone_id("/hostedzone/Z123ABC").is_ok());
        assert!(zone_id("Z12 3").is_err());
        assert!(https_url("https://acme-v02.api.letsencrypt.org/directory").is_ok());
        assert!(https_url("http://insecure").is_err());
        assert!(unix_user("ubuntu").is_ok());
        assert!(unix_user("root;id").is_err());
        assert!(ipv4("127.0.0.1").is_ok());
        assert!(ipv4("localhost").is_err());
        assert!(addon("hostpath-storage").is_ok());
        assert!(addon("dns; reboot").is_err());
    }
}
