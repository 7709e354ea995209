#!/usr/bin/env python3
"""The house rules the code layout must keep (issue 13), checked from the sources:

- adapters (src/ssh, src/aws, src/https, src/process.rs, src/templates.rs, src/terraform) reach nothing
  above them: not the stages, the runner, the stage trait, the CLI, the commands, the hosts
  layer, stage names or the reporter;
- the runner and the stage trait (src/runner.rs, src/stage.rs) use no SSH type;
- no source file is longer than LIMIT lines.

Reads every `crate::…` path in the code (use lines and inline paths alike; comments skipped).
Prints each violation and exits 1 when there is one."""
import pathlib
import re
import sys

LIMIT = 450
ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"
ADAPTERS = ["ssh", "aws", "https", "process.rs", "templates.rs", "terraform"]
ABOVE = ["stages", "runner", "stage", "cli", "commands", "fleet", "stage_name", "report::Reporter", "report::reporter"]
RULES = [
    (ADAPTERS, ABOVE, "an adapter must not reach"),
    (["runner.rs", "stage.rs"], ["ssh"], "the runner and the stage trait must not use"),
]


def files(entries):
    for e in entries:
        p = ROOT / e
        yield from (sorted(p.rglob("*.rs")) if p.is_dir() else [p])


def crate_paths(path):
    """(line number, path) for every crate:: path, with `use crate::{a, b::c}` groups expanded."""
    text = path.read_text()
    code = re.sub(r"//[^\n]*", "", text)
    for m in re.finditer(r"crate::((?:\w+::)*)(\{[^;]*?\}|\w+)", code):
        line = code.count("\n", 0, m.start()) + 1
        prefix, tail = m.group(1), m.group(2)
        if tail.startswith("{"):
            for item in re.split(r"[,\s]+", tail.strip("{}")):
                if item:
                    yield line, prefix + item.split("::{")[0]
        else:
            yield line, prefix + tail


def main():
    bad = []
    for entries, forbidden, what in RULES:
        for f in files(entries):
            for line, p in crate_paths(f):
                for x in forbidden:
                    if p == x or p.startswith(x + "::") or p.startswith(x + "{"):
                        bad.append(f"{f.relative_to(ROOT.parent)}:{line}: {what} crate::{x} (crate::{p})")
    for f in sorted(ROOT.rglob("*.rs")):
        n = len(f.read_text().splitlines())
        if n > LIMIT:
            bad.append(f"{f.relative_to(ROOT.parent)}: {n} lines (more than {LIMIT}: split it into parts)")
    for b in bad:
        print(b)
    if bad:
        sys.exit(1)
    print(f"layering holds; no source file over {LIMIT} lines")


main()
