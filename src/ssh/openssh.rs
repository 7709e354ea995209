//! The arguments of the system's OpenSSH client for an interactive login (`jeeves ssh`) with the
//! same target, key, user, jump host and pinned known_hosts as Jeeves' own sessions.

use std::path::Path;

use super::{SshOptions, Target};

/// `ssh` arguments, the destination last (a remote command may follow). Strict host key
/// checking against the pinned known_hosts only: a key that is not pinned is refused, never
/// added. A jump host is reached by a `ProxyCommand` ssh with the same checks, because options
/// given with `-o` do not apply to a `-J` jump host (ssh(1), `-J`).
pub fn openssh_args(target: &Target, opts: &SshOptions) -> Vec<String> {
    let mut args = common(&opts.key_path, &opts.known_hosts);
    args.extend([
        "-o".into(),
        format!("ServerAliveInterval={}", opts.keepalive.as_secs().max(1)),
        "-p".into(),
        target.port.to_string(),
        "-l".into(),
        opts.user.clone(),
    ]);
    if let Some(jump) = &opts.jump {
        let mut proxy = vec!["ssh".to_string()];
        // ssh expands %-tokens in ProxyCommand: a literal % in a path is written %%.
        proxy.extend(
            common(&opts.key_path, &opts.known_hosts)
                .into_iter()
                .map(|a| a.replace('%', "%%")),
        );
        proxy.extend([
            "-p".into(),
            jump.target.port.to_string(),
            "-l".into(),
            jump.user.clone(),
            "-W".into(),
            "%h:%p".into(),
            jump.target.address.clone(),
        ]);
        let quoted: Vec<String> = proxy
            .iter()
            .map(|a| {
                if a == "%h:%p" {
                    a.clone()
                } else {
                    shlex::try_quote(a)
                        .map(|q| q.into_owned())
                        .unwrap_or_default()
                }
            })
            .collect();
        args.extend(["-o".into(), format!("ProxyCommand={}", quoted.join(" "))]);
    }
    args.push(target.address.clone());
    args
}

fn common(key: &Path, known_hosts: &Path) -> Vec<String> {
    vec![
        "-i".into(),
        key.display().to_string(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        // Only the pinned file: a stale entry in /etc/ssh/ssh_known_hosts cannot vouch for a host.
        "-o".into(),
        "GlobalKnownHostsFile=/dev/null".into(),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ssh::{HostKeyPolicy, Jump};

    fn opts(jump: Option<Jump>) -> SshOptions {
        SshOptions {
            user: "ubuntu".into(),
            key_path: "/keys/my key".into(),
            passphrase: None,
            known_hosts: "/state/100%/known_hosts".into(),
            host_keys: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(30),
            sudo: true,
            jump,
        }
    }

    #[test]
    fn direct_and_through_a_jump_host() {
        let target = Target {
            name: "controller".into(),
            address: "198.51.100.7".into(),
            port: 2222,
        };
        let args = openssh_args(&target, &opts(None));
        let line = args.join(" ");
        assert!(line.contains("-o StrictHostKeyChecking=yes"), "{line}");
        assert!(
            line.contains("-o UserKnownHostsFile=/state/100%/known_hosts"),
            "{line}"
        );
        assert!(line.ends_with("-p 2222 -l ubuntu 198.51.100.7"), "{line}");
        assert!(!line.contains("ProxyCommand"), "{line}");

        let jump = Jump {
            target: Target {
                name: "bastion".into(),
                address: "bastion.example.com".into(),
                port: 22,
            },
            user: "ops".into(),
        };
        let args = openssh_args(&target, &opts(Some(jump)));
        let proxy = args
            .iter()
            .find_map(|a| a.strip_prefix("ProxyCommand="))
            .expect("a ProxyCommand");
        assert_eq!(
            proxy,
            "ssh -i '/keys/my key' -o 'IdentitiesOnly=yes' -o 'StrictHostKeyChecking=yes' \
             -o 'UserKnownHostsFile=/state/100%%/known_hosts' -o 'GlobalKnownHostsFile=/dev/null' \
             -p 22 -l ops -W %h:%p bastion.example.com"
        );
        assert_eq!(args.last().unwrap(), "198.51.100.7");
    }
}
