use std::fmt;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// The stages of `jeeves up`, in the order they run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    Terraform,
    Bootstrap,
    Tls,
    Tunnel,
    Deploy,
    Dns,
}

impl StageName {
    pub const ALL: [StageName; 6] = [
        StageName::Terraform,
        StageName::Bootstrap,
        StageName::Tls,
        StageName::Tunnel,
        StageName::Deploy,
        StageName::Dns,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Terraform => "terraform",
            StageName::Bootstrap => "bootstrap",
            StageName::Tls => "tls",
            StageName::Tunnel => "tunnel",
            StageName::Deploy => "deploy",
            StageName::Dns => "dns",
        }
    }

    /// The earlier stages whose work this stage's probe reads: until their planned changes are
    /// applied it may have nothing to probe (no MicroK8s on the controller yet, no API to open
    /// a tunnel to), which `plan` reports as a change to come rather than a failure.
    pub fn needs(self) -> &'static [StageName] {
        match self {
            StageName::Terraform => &[],
            StageName::Bootstrap | StageName::Tls | StageName::Dns => &[StageName::Terraform],
            StageName::Tunnel | StageName::Deploy => &[StageName::Terraform, StageName::Bootstrap],
        }
    }

    /// Whether the stage logs in to the hosts over SSH (and so needs a usable key).
    pub fn uses_ssh(self) -> bool {
        matches!(
            self,
            StageName::Bootstrap | StageName::Tls | StageName::Tunnel | StageName::Deploy
        )
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
