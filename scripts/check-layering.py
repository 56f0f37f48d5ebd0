#!/usr/bin/env python3
"""Checks the crate's import graph against the layering table in src/lib.rs.

The table (rows `| `module` | `a`, `b` |` in the crate docs) is the
authority: a top-level module may use, through `crate::<module>` paths in
non-test code, only itself and the modules on its row. This script reads
every such path in src/ (in `use` lines, grouped `use crate::{a, b::c}`
included, and inline paths such as `crate::queue::Queue::open(..)`), skips
test code (`#[cfg(test)]` items and modules, files named `*tests.rs`, files
declared by a `#[cfg(test)] mod x;`) and comments (doc comments included),
and fails naming file, line and edge for every edge not in the table. It
also fails when the table has a cycle, when a top-level module has no row,
or when a row names a module the crate does not have.

Usage: scripts/check-layering.py [--graph]   (from the repository root, or
anywhere: paths are relative to this script). `--graph` prints the edges
found, one `from -> to` per line, and exits.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def top_level_modules(lib):
    return set(re.findall(r"^pub mod (" + IDENT + r");", lib, re.M))


def root_reexports(lib):
    """`pub use module::{A, B};` in lib.rs: crate::A means module."""
    out = {}
    for m in re.finditer(r"^pub use (" + IDENT + r")::(.*?);", lib, re.M | re.S):
        module, rest = m.group(1), m.group(2)
        for name in re.findall(IDENT, rest):
            out[name] = module
    return out


def read_table(lib):
    """The rows of the layering table: module -> set of modules it may use."""
    table = {}
    for n, line in enumerate(lib.splitlines(), 1):
        m = re.match(r"^//!\s*\|\s*`(" + IDENT + r")`\s*\|(.*)\|\s*$", line)
        if not m:
            continue
        module, uses = m.group(1), m.group(2)
        if module in table:
            sys.exit(f"src/lib.rs:{n}: `{module}` has two rows in the layering table")
        table[module] = set(re.findall(r"`(" + IDENT + r")`", uses))
    return table


def strip_strings(line):
    """The line with string and char literal contents blanked (so that
    `"http://x"` is not a comment and `"{"` is not a brace)."""
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and i + 2 < n and (line[i + 2] == "'" or line[i + 1] == "\\"):
            j = line.find("'", i + 2 if line[i + 1] != "\\" else i + 3)
            out.append("' '")
            i = (j if j >= 0 else n) + 1
        elif line.startswith("//", i):
            break
        else:
            out.append(c)
            i += 1
    return "".join(out)


def code_lines(text):
    """(line number, code) of the lines outside test items and comments.
    Raw strings spanning lines are rare in src/ and hold no crate paths."""
    raw = text.splitlines()
    lines = [strip_strings(l) for l in raw]
    out = []
    i = 0
    in_block_comment = False
    while i < len(lines):
        line = lines[i]
        if in_block_comment:
            if "*/" in line:
                in_block_comment = False
            i += 1
            continue
        if line.strip().startswith("/*"):
            in_block_comment = "*/" not in line
            i += 1
            continue
        if line.strip().startswith("#[cfg(test)]"):
            # Skip the attribute and the item it guards: up to its `;`, or
            # to the brace that closes its block.
            i += 1
            depth = 0
            opened = False
            while i < len(lines):
                l = lines[i]
                depth += l.count("{") - l.count("}")
                opened = opened or "{" in l
                i += 1
                if (opened and depth <= 0) or (not opened and l.rstrip().endswith(";")):
                    break
            continue
        out.append((i + 1, line))
        i += 1
    return out


def test_only_files():
    """Files declared by `#[cfg(test)] mod x;`: test code wherever named."""
    skip = set()
    for dirpath, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            text = open(path, encoding="utf-8").read()
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([a-z]+\))?\s+)?mod (" + IDENT + r");", text):
                name = m.group(1)
                if f in ("mod.rs", "lib.rs", "main.rs"):
                    base = dirpath
                else:
                    base = os.path.join(dirpath, f[:-3])
                for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                    skip.add(os.path.normpath(cand))
                # A test-only directory module: everything below it.
                skip.add(os.path.normpath(os.path.join(base, name)) + os.sep)
    return skip


def module_path(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def edges_of(rel, text, modules, reexports):
    """(line, target module, path text) for every crate path in the file."""
    me = module_path(rel)
    found = []
    lines = code_lines(text)
    # Join each `use` statement onto one line (grouped imports span lines).
    joined = []
    k = 0
    while k < len(lines):
        n, line = lines[k]
        if re.match(r"\s*(pub(\([a-z]+\))?\s+)?use\s", line) and ";" not in line:
            buf = line
            while ";" not in buf and k + 1 < len(lines):
                k += 1
                buf += " " + lines[k][1].strip()
            joined.append((n, buf))
        else:
            joined.append((n, line))
        k += 1
    for n, line in joined:
        # Grouped: use crate::{a, b::c, d::{e, f}};
        for m in re.finditer(r"\bcrate::\{", line):
            depth, j, item, items = 1, m.end(), "", []
            while j < len(line) and depth > 0:
                c = line[j]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                if depth == 1 and c == ",":
                    items.append(item)
                    item = ""
                elif depth >= 1 and not (depth == 1 and c == "}"):
                    item += c
                j += 1
            items.append(item)
            for it in items:
                head = re.match(r"\s*(" + IDENT + r")", it)
                if head:
                    found.append((n, head.group(1), "crate::{" + it.strip() + "}"))
        for m in re.finditer(r"\bcrate::(" + IDENT + r")", line):
            found.append((n, m.group(1), m.group(0)))
        # super:: chains that climb to the crate root.
        for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:super::)+)(" + IDENT + r")", line):
            ups = m.group(1).count("super::")
            # A file module's `super` is its parent; inline modules are rare
            # here and only deepen the path, so this errs on the safe side.
            if ups == len(me):
                found.append((n, m.group(2), m.group(0)))
    out = []
    for n, name, path in found:
        target = name if name in modules else reexports.get(name)
        if target is None or target == me[0]:
            continue
        out.append((n, target, path))
    return out


def find_cycle(table):
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(table.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if state.get(d) is None:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(table):
        if state.get(m) is None:
            c = visit(m)
            if c:
                return c
    return None


def main():
    lib = open(os.path.join(SRC, "lib.rs"), encoding="utf-8").read()
    modules = top_level_modules(lib)
    reexports = root_reexports(lib)
    table = read_table(lib)
    problems = []
    for m in sorted(modules - set(table)):
        problems.append(f"src/lib.rs: module `{m}` has no row in the layering table")
    for m, uses in sorted(table.items()):
        for u in sorted((uses | {m}) - modules):
            problems.append(f"src/lib.rs: the layering table names `{u}`, which is not a top-level module")
    cycle = find_cycle(table)
    if cycle:
        problems.append("src/lib.rs: the layering table has a cycle: " + " -> ".join(cycle))
    skip = test_only_files()
    graph = set()
    for dirpath, _, files in os.walk(SRC):
        for f in sorted(files):
            path = os.path.normpath(os.path.join(dirpath, f))
            rel = os.path.relpath(path, SRC)
            if not f.endswith(".rs") or f.endswith("tests.rs") or rel in ("lib.rs", "main.rs"):
                continue
            if path in skip or any(path.startswith(s) for s in skip if s.endswith(os.sep)):
                continue
            text = open(path, encoding="utf-8").read()
            me = module_path(rel)[0]
            for n, target, p in edges_of(rel, text, modules, reexports):
                graph.add((me, target))
                if target not in table.get(me, set()):
                    problems.append(f"src/{rel}:{n}: {me} -> {target} ({p}) is not in the layering table")
    if "--graph" in sys.argv:
        for a, b in sorted(graph):
            print(f"{a} -> {b}")
        return 0
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"layering: {len(problems)} problem(s); the table in src/lib.rs is the authority", file=sys.stderr)
        return 1
    print(f"layering: {len(graph)} edges between {len(modules)} modules, all in the table, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
