//! The docs cannot drift from the CLI: every `jeeves …` line in a code block of README.md and
//! docs/*.md is parsed by the real command line (`jeeves::cli::Cli`, the parser the binary
//! uses), so a flag renamed or removed fails here with the file and line.

use clap::Parser;
use jeeves::cli::Cli;

use crate::common;

/// (file, line number, words) of every `jeeves …` invocation in a fenced code block: the
/// command up to a shell comment, a pipe, `&&`, `;` or a redirection.
fn invocations() -> Vec<(String, usize, Vec<String>)> {
    let root = common::repo();
    let mut files = vec![root.join("README.md")];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        let mut docs: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        docs.sort();
        files.extend(docs);
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_code = false;
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            let line = line.trim_start().trim_start_matches("$ ");
            if !in_code || !line.starts_with("jeeves ") {
                continue;
            }
            let Some(words) = shlex::split(line) else {
                panic!("{}:{}: cannot split `{line}`", file.display(), i + 1);
            };
            let command: Vec<String> = words
                .into_iter()
                .take_while(|w| {
                    !w.starts_with('#') && !["|", "&&", ";", ">", "2>&1"].contains(&w.as_str())
                })
                .collect();
            let name = file.strip_prefix(&root).unwrap().display().to_string();
            found.push((name, i + 1, command));
        }
    }
    found
}

#[test]
fn every_jeeves_line_in_the_docs_parses() {
    let found = invocations();
    assert!(found.len() >= 10, "too few invocations found: {found:?}");
    let bad: Vec<String> = found
        .iter()
        .filter_map(|(file, line, words)| {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            Cli::try_parse_from(words)
                .err()
                .filter(|e| !matches!(e.kind(), DisplayHelp | DisplayVersion))
                .map(|e| format!("{file}:{line}: `{}`: {}", words.join(" "), e.kind()))
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The check can fail: a flag that does not exist is refused.
    assert!(Cli::try_parse_from(["jeeves", "up", "--no-such-flag"]).is_err());
}
