use anyhow::Result;

use crate::cli::RenderArgs;
use crate::config::Settings;
use crate::exit_code;
use crate::templates::{EXTRA_VALUES, Templates};

pub fn run(settings: &Settings, args: &RenderArgs) -> Result<u8> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| settings.state_dir.join("rendered"));
    let templates = Templates::load(&settings.templates_dir)?;
    // `[backup]` without a bucket: terraform's, from the inventory of the last run. Before
    // terraform has made one there is no bucket to render: the backup objects are left out
    // (and said so), the rest is rendered as `up` would render it.
    let mut settings = std::borrow::Cow::Borrowed(settings);
    if settings.backup_bucket_from_terraform() {
        let inv = crate::state::StateDir::open(&settings.state_dir)?
            .load()?
            .inventory;
        match settings
            .backup_from_outputs(inv.backup_bucket.as_deref(), inv.backup_prefix.as_deref())
        {
            Ok(s) => settings = std::borrow::Cow::Owned(s),
            Err(e) => {
                eprintln!("backup objects not rendered: {e}");
                settings.to_mut().backup = None;
            }
        }
    }
    let settings = settings.as_ref();
    let mut ctx = crate::stages::template_context(settings);
    // Controllers ≥ 3: haproxy.cfg forwards ACME challenges to the first controller, as the tls
    // stage renders it, from the inventory of the last run.
    if !settings.cluster.single() {
        let inv = crate::state::StateDir::open(&settings.state_dir)?
            .load()?
            .inventory;
        match &inv.controller {
            Some(first) => ctx.haproxy.acme = crate::stages::tls::acme_forward(settings, first),
            None => eprintln!(
                "haproxy.cfg rendered without its ACME forward: the inventory has no controller yet (`jeeves up --only terraform` makes them)"
            ),
        }
    }
    let mut files = templates.render_all(&ctx)?;
    if let Some(extra) = crate::stages::extra_values(settings)? {
        files.push((EXTRA_VALUES.into(), extra));
    }
    // Private, as the state directory is (0700 directories, 0600 files): the Helm values may
    // hold what the pipeline file's [helm.values] says.
    for (rel, text) in files {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            crate::state::create_private_dir(dir)?;
        }
        crate::state::write_private(&path, text.as_bytes())?;
        println!("{}", path.display());
    }
    Ok(exit_code::SUCCESS)
}
