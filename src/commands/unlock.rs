//! `jeeves unlock LOCK_ID`: breaks the S3 lock of a run that died holding it. The id must be the
//! current lock's, so a lock taken since by a live run is never broken by mistake.

use anyhow::Result;

use crate::cli::UnlockArgs;
use crate::config::Settings;
use crate::exit_code::{self, UsageError};
use crate::state::s3_unlock;

pub async fn run(settings: &Settings, args: &UnlockArgs) -> Result<u8> {
    let Some(bucket) = super::state_bucket(settings).await? else {
        return Err(UsageError(
            "the state backend is local: its lock is an OS file lock, released by the system when its holder exits; there is nothing to unlock"
                .into(),
        )
        .into());
    };
    let url = bucket.url("lock");
    match s3_unlock(&bucket, &args.lock_id)? {
        Some(info) => println!("removed the lock {url} of {}", info.holder),
        None => println!("no lock at {url}; nothing to unlock"),
    }
    Ok(exit_code::SUCCESS)
}
