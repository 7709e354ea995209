#!/usr/bin/env python3
"""The house rules the code layout must keep (issues 13 and 26), checked from the sources:

- adapters (src/ssh, src/aws, src/https, src/kube, src/process.rs, src/templates.rs,
  src/terraform) reach nothing above them: not the stages, the runner, the stage trait, the
  CLI, the commands, the hosts layer, stage names or the reporter;
- the runner and the stage trait (src/runner.rs, src/stage.rs) use no SSH type;
- outside src/stages (the commands above all), a stage is reached only through its public face:
  a path into the stages goes no deeper than `crate::stages::<stage>::<item>` (past a type,
  `…::<Type>::new`, is the type's own), and `<item>` is not one of the stage's inner modules (a
  file or folder in src/stages/<stage>/), so a face is an item its mod.rs defines or re-exports
  deliberately. A name bound by `use` (`use crate::stages::deploy;` then `deploy::tools::…`) is
  followed;
- no source file is longer than LIMIT lines.

Reads every `crate::…` path in the code (use lines and inline paths alike; comments skipped).
Prints each violation and exits 1 when there is one. `layering.py [SRC]` checks another source
tree (tests/layering_test.py, its self-test, sets ROOT and calls `violations()`)."""
import pathlib
import re
import sys

LIMIT = 450
ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"
ADAPTERS = ["ssh", "aws", "https", "kube", "process.rs", "templates.rs", "terraform"]
ABOVE = ["stages", "runner", "stage", "cli", "commands", "fleet", "stage_name", "report::Reporter", "report::reporter"]
RULES = [
    (ADAPTERS, ABOVE, "an adapter must not reach"),
    (["runner.rs", "stage.rs"], ["ssh"], "the runner and the stage trait must not use"),
]


def files(entries):
    for e in entries:
        p = ROOT / e
        yield from (sorted(p.rglob("*.rs")) if p.is_dir() else [p])


def code_of(path):
    return re.sub(r"//[^\n]*", "", path.read_text())


SEGMENT = re.compile(r"\s*(\w+|\*|\{)")
SEP = re.compile(r"\s*::")
ALIAS = re.compile(r"\s+as\s+(\w+)")


def use_tree(code, i, prefix):
    """The paths of the use tree (or plain path) at `i` under `prefix`, as (segments, the name it
    binds): groups expanded however deep (`{a, b::{c as d, self}}`), `self` as its parent,
    `as` renames as the name bound."""
    segs = list(prefix)
    while True:
        m = SEGMENT.match(code, i)
        if not m:
            return
        if m.group(1) == "{":
            depth, k, start = 0, m.end(), m.end()
            while k < len(code):
                c = code[k]
                if c == "{":
                    depth += 1
                elif c == "}" and depth:
                    depth -= 1
                elif c in ",}" and not depth:
                    yield from use_tree(code, start, segs)
                    if c == "}":
                        return
                    start = k + 1
                k += 1
            return
        segs.append(m.group(1))
        i = m.end()
        sep = SEP.match(code, i)
        if sep:
            i = sep.end()
            continue
        alias = ALIAS.match(code, i)
        if segs[-1] == "self":
            segs.pop()
        if segs and segs[-1] != "*":
            yield segs, alias.group(1) if alias else segs[-1]
        return


def crate_uses(path):
    """(line number, segments, name bound) for every crate:: path of `path`."""
    code = code_of(path)
    for m in re.finditer(r"crate::", code):
        line = code.count("\n", 0, m.start()) + 1
        for segs, name in use_tree(code, m.end(), []):
            yield line, segs, name


def crate_paths(path):
    """(line number, path) for every crate:: path, use groups expanded."""
    for line, segs, _ in crate_uses(path):
        yield line, "::".join(segs)


def inner_modules(stage):
    """The inner modules of a stage: the files and folders beside its mod.rs."""
    d = ROOT / "stages" / stage
    if not d.is_dir():
        return set()
    return {p.stem for p in d.iterdir() if p.name != "mod.rs" and (p.is_dir() or p.suffix == ".rs")}


def beyond_face(parts):
    """Why the path `parts` (`["stages", stage, item, …]`) reaches past a stage's face, or None."""
    if len(parts) < 3 or parts[0] != "stages":
        return None
    stage, item = parts[1], parts[2]
    if item in inner_modules(stage):
        return f"the inner module stages::{stage}::{item}"
    if len(parts) > 3 and not item[:1].isupper():
        return f"a path deeper than stages::{stage}::{item}"
    return None


def face_violations(f):
    """Paths of `f` into the stages that pass a stage's face: direct crate:: paths, and paths
    through a name a `use` bound to `crate::stages` or `crate::stages::<stage>`."""
    bound = {}
    for line, parts, name in crate_uses(f):
        why = beyond_face(parts)
        if why:
            yield line, "::".join(parts), why
        if parts[0] == "stages" and len(parts) <= 2:
            bound[name] = parts
    code = code_of(f)
    for name, prefix in bound.items():
        for m in re.finditer(rf"(?<![\w:]){name}((?:::\w+)+)", code):
            parts = prefix + m.group(1).split("::")[1:]
            why = beyond_face(parts)
            if why:
                yield code.count("\n", 0, m.start()) + 1, "::".join(parts), why


def violations():
    """Every violation under ROOT, one line each."""
    bad = []
    for entries, forbidden, what in RULES:
        for e in entries:
            if not (ROOT / e).exists():
                bad.append(f"src/{e}: no such file or folder (named in a rule of tests/layering.py)")
        for f in files(e for e in entries if (ROOT / e).exists()):
            for line, p in crate_paths(f):
                for x in forbidden:
                    if p == x or p.startswith(x + "::") or p.startswith(x + "{"):
                        bad.append(f"{f.relative_to(ROOT.parent)}:{line}: {what} crate::{x} (crate::{p})")
    stages = ROOT / "stages"
    for f in sorted(ROOT.rglob("*.rs")):
        if stages in f.parents:
            continue
        for line, p, why in face_violations(f):
            bad.append(f"{f.relative_to(ROOT.parent)}:{line}: reaches {why} (crate::{p}); use the stage's face (its mod.rs) or an adapter")
    for f in sorted(ROOT.rglob("*.rs")):
        n = len(f.read_text().splitlines())
        if n > LIMIT:
            bad.append(f"{f.relative_to(ROOT.parent)}: {n} lines (more than {LIMIT}: split it into parts)")
    return bad


def main():
    global ROOT
    if len(sys.argv) > 1:
        ROOT = pathlib.Path(sys.argv[1]).resolve()
    bad = violations()
    for b in bad:
        print(b)
    if bad:
        sys.exit(1)
    print(f"layering holds; no source file over {LIMIT} lines")


if __name__ == "__main__":
    main()
