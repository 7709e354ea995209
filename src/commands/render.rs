use anyhow::{Context, Result};

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
    for (rel, text) in files {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(exit_code::SUCCESS)
}
