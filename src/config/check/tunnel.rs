//! `[tunnel]`: the local and remote ports of the tunnel to the MicroK8s API.

use super::Checker;
use crate::config::{Tunnel, validate};

pub(super) fn check(c: &mut Checker, raw: Tunnel) -> Option<Tunnel> {
    let local = c.check("tunnel.local_port", validate::port(raw.local_port));
    let remote = c.check("tunnel.remote_port", validate::port(raw.remote_port));
    local?;
    remote?;
    Some(raw)
}
