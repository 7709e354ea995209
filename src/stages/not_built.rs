use anyhow::{Result, bail};
use async_trait::async_trait;

use crate::report::Change;
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;

/// A stage this version of Jeeves does not have yet: it fails, loudly, rather than pretend.
pub struct NotBuilt(pub StageName);

#[async_trait]
impl Stage for NotBuilt {
    fn name(&self) -> StageName {
        self.0
    }

    async fn probe(&mut self, _: &mut StageContext<'_>) -> Result<Vec<Change>> {
        bail!(
            "the `{}` stage is not implemented in this version of Jeeves; nothing was done (run the stages that exist with --only, e.g. `jeeves up --only terraform`)",
            self.0
        )
    }

    async fn apply(&mut self, _: &mut StageContext<'_>) -> Result<()> {
        bail!(
            "the `{}` stage is not implemented in this version of Jeeves",
            self.0
        )
    }
}
