//! `jeeves version`: the crate's version, and the git commit when the build knew it.

use anyhow::Result;

use crate::cli::OutputMode;
use crate::exit_code;

/// Set by the build environment (`JEEVES_GIT_COMMIT=$(git rev-parse HEAD) cargo build`, as
/// `.ci/run` and the release build do); no build script, so a plain `cargo build` stays as fast.
const COMMIT: Option<&str> = option_env!("JEEVES_GIT_COMMIT");

pub fn run(output: OutputMode) -> Result<u8> {
    let version = env!("CARGO_PKG_VERSION");
    let commit = COMMIT.filter(|c| !c.is_empty());
    if output == OutputMode::Json {
        let doc = serde_json::json!({ "name": "jeeves", "version": version, "commit": commit });
        println!("{doc}");
    } else {
        match commit {
            Some(c) => println!("jeeves {version} ({c})"),
            None => println!("jeeves {version}"),
        }
    }
    Ok(exit_code::SUCCESS)
}
