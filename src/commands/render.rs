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
    let ctx = crate::stages::template_context(settings);
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
