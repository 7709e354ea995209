#!/usr/bin/env python3
"""The layering check's own test: each rule of tests/layering.py fires on a small source tree
that breaks it, and a tree that keeps them all passes. Run by `bash tests/run` (about 0.1 s)."""
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import layering  # noqa: E402

# A stage with a face (its mod.rs) and an inner module, for every tree.
BASE = {
    **{f: "" for f in ["ssh/mod.rs", "aws/mod.rs", "https/mod.rs", "terraform/mod.rs", "process.rs", "templates.rs", "runner.rs", "stage.rs"]},
    "stages/mod.rs": "pub mod deploy;\npub mod dns;\npub fn build() {}\n",
    "stages/deploy/mod.rs": "mod maintenance;\npub use maintenance::after_start;\npub struct Face;\n",
    "stages/deploy/maintenance.rs": "pub fn after_start() {}\n",
    "stages/dns.rs": "pub fn record() {}\n",
    "kube/mod.rs": "use crate::process::run;\nuse crate::config::Settings;\n",
    "commands/ok.rs": "use crate::stages::deploy::{Face, after_start};\nuse crate::stages::deploy;\n"
    "use crate::kube::Tools;\nfn f() { deploy::after_start(); crate::stages::deploy::Face::new(); "
    "crate::stages::dns::record(); crate::stages::build(); crate::terraform::show::x(); }\n",
}

# (file, its text, what the check must say) — each breaks one rule.
BROKEN = [
    ("commands/a.rs", "use crate::stages::deploy::maintenance::after_start;\n", "inner module stages::deploy::maintenance"),
    ("commands/b.rs", "fn f() { crate::stages::deploy::maintenance::after_start() }\n", "inner module stages::deploy::maintenance"),
    ("commands/c.rs", "use crate::stages::{deploy::maintenance::after_start};\n", "inner module stages::deploy::maintenance"),
    ("commands/d.rs", "use crate::stages::deploy;\nfn f() { deploy::maintenance::after_start() }\n", "inner module stages::deploy::maintenance"),
    ("commands/e.rs", "use crate::stages;\nfn f() { stages::deploy::maintenance::after_start() }\n", "inner module stages::deploy::maintenance"),
    ("commands/f.rs", "fn f() { crate::stages::deploy::reexported_module::g() }\n", "deeper than stages::deploy::reexported_module"),
    # Found in review: a group inside a group, a rename, `self` in a group.
    ("commands/g.rs", "use crate::stages::{deploy::{maintenance::after_start}};\n", "inner module stages::deploy::maintenance"),
    ("commands/h.rs", "use crate::stages::deploy as d;\nfn f() { d::maintenance::after_start() }\n", "inner module stages::deploy::maintenance"),
    ("commands/i.rs", "use crate::stages::deploy::{self};\nfn f() { deploy::maintenance::after_start() }\n", "inner module stages::deploy::maintenance"),
    ("commands/j.rs", "use crate::stages::{deploy as x, dns};\nfn f() { x::maintenance::after_start() }\n", "inner module stages::deploy::maintenance"),
    ("runner.rs", "use crate::stages::deploy::maintenance;\n", "inner module stages::deploy::maintenance"),
    ("kube/a.rs", "use crate::stages::deploy::Face;\n", "an adapter must not reach crate::stages"),
    ("kube/b.rs", "use crate::fleet::Fleet;\n", "an adapter must not reach crate::fleet"),
    ("kube/c.rs", "use crate::stage::StageContext;\n", "an adapter must not reach crate::stage "),
    ("kube/d.rs", "use crate::report::Reporter;\n", "an adapter must not reach crate::report::Reporter"),
    ("kube/e.rs", "use crate::{runner::Runner, process};\n", "an adapter must not reach crate::runner"),
    ("kube/f.rs", "use crate::commands::check;\n", "an adapter must not reach crate::commands"),
    ("stage.rs", "use crate::ssh::SshSession;\n", "the runner and the stage trait must not use crate::ssh"),
    ("kube/long.rs", "\n" * 451, "451 lines (more than 450"),
    ("aws/mod.rs", None, "src/aws: no such file or folder"),
]


def check(extra):
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d) / "src"
        for name, text in {**BASE, **extra}.items():
            if text is None:
                continue
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(text)
        layering.ROOT = src
        return "\n".join(layering.violations())


def main():
    failures = []
    ok = check({})
    if ok:
        failures.append(f"a tree that keeps the rules failed:\n{ok}")
    for name, text, said in BROKEN:
        out = check({name: text})
        if said not in out:
            failures.append(f"{name} ({(text or 'removed').strip()[:60]!r}): want a violation saying {said!r}, got:\n{out}")
    for f in failures:
        print(f)
    if failures:
        sys.exit(1)
    print(f"the layering check fires on each of {len(BROKEN)} broken trees and passes a sound one")


main()
