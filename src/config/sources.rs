//! Where each key's value came from — the pipeline file, or the variable that overrode it — so
//! that every error names the place to fix.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub(super) struct Sources {
    /// The pipeline file, as the user named it.
    pub file: String,
    /// `section.key` → the variable that set it (`environment variable X` or `X in .env`).
    pub overrides: HashMap<String, String>,
}

impl Sources {
    /// `tls.domain` → its source; `terraform.var_files[0]` → the source of `terraform.var_files`.
    pub fn of(&self, key: &str) -> String {
        let whole = key.split('[').next().unwrap_or(key);
        self.overrides
            .get(key)
            .or_else(|| self.overrides.get(whole))
            .cloned()
            .unwrap_or_else(|| self.file.clone())
    }
}
