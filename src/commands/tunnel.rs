use anyhow::{Result, bail};

use crate::config::Settings;

pub fn run(settings: &Settings) -> Result<u8> {
    bail!(
        "`jeeves tunnel` is not implemented in this version of Jeeves (it will forward 127.0.0.1:{} to the controller's MicroK8s API)",
        settings.tunnel.local_port
    )
}
