#!/usr/bin/env python3
"""Finds import cycles between the source files (modules) of Rust crates.

Usage: scripts/module_cycles.py CRATE_SRC_DIR...   (e.g. crates/sandbox/src)

The rule: within a crate, "file A uses an item of module B" must never lead back to A; the modules
form layers, each using only those below it. Nodes are source files (`a/b.rs` or `a/b/mod.rs` is
module `a::b`, `lib.rs` the root; `main.rs` and `bin/` are other crates, skipped). A -> B when A
names an item of B in a `use crate::…` / `super::…` / `self::…` (trees expanded) or in an inline
code path like `crate::x::state::XState` or `super::Item` (comments and literals ignored). A path
may also start with a module in scope: a child (`mod foo;`) or an imported module
(`use crate::faults;` then `faults::note_call`). A path resolves to the deepest module file that
exists (`crate::x::state::XState` -> `x/state.rs`, `crate::x::XState` -> `x/mod.rs`), following a
`pub use` re-export of the next name to the file the item comes from.

Not edges: `mod foo;`; `pub use` in `lib.rs` or a module with children (a parent declaring or
re-exporting its children is not a dependency); importing a module itself (its later uses are the
edges); a file naming itself; `#[cfg(test)]` modules (inline, or `#[cfg(test)] mod x;` files).

Prints each strongly connected component of more than one file, with one cycle through it and
the line that makes each edge. Exit status 1 if there is a cycle, 0 otherwise.
"""

import re
import sys
from pathlib import Path

COMMENT_OR_LITERAL = re.compile(
    r"//[^\n]*|/\*(?:[^*]|\*(?!/))*\*/"  # comments
    r"|(?<!\w)b?r(#*)\"(?:.|\n)*?\"\1"  # raw strings
    r"|(?<!\w)b?\"(?:\\.|[^\"\\])*\""  # strings
    r"|(?<!\w)b?'(?:\\.|[^'\\\n])'"  # chars (not lifetimes)
)
USE = re.compile(r"(\bpub(?:\s*\([^)]*\))?\s+)?\buse\s+([^;]+);")
PATH = re.compile(r"(?<![\w:$])(\$?\w+)((?:\s*::\s*\w+)+)")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")


def blank(text):
    """Every character but newlines as a space (line numbers stay right)."""
    return re.sub(r"[^\n]", " ", text)


def strip(text):
    """Code only: comments, literals and inline `#[cfg(test)]` modules blanked."""
    text = COMMENT_OR_LITERAL.sub(lambda m: blank(m.group(0)), text)
    for m in reversed([m for m in TEST_MOD.finditer(text) if m.group(2) == "{"]):
        depth, end = 1, m.end()
        while depth and end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        text = text[: m.start()] + blank(text[m.start() : end]) + text[end:]
    return text


def expand(tree):
    """`a::{b, c::{D as E, self}}` -> [([a, b], b), ([a, c, D], E), ([a, c], c)]."""
    tokens, out = re.findall(r"\w+|[{},*]", tree), []

    def walk(i, prefix):  # one path from tokens[i]; returns the index after it
        path = list(prefix)
        while i < len(tokens) and tokens[i] not in ",}":
            if tokens[i] == "{":
                i = walk(i + 1, path)
                while tokens[i] == ",":
                    i = walk(i + 1, path)
                return i + 1
            if tokens[i] == "as":
                out.append((path, tokens[i + 1]))
                return i + 2
            if not (tokens[i] == "self" and path):  # `{self, …}`: the prefix itself
                path.append(tokens[i])
            i += 1
        out.append((path, path[-1] if path else ""))
        return i

    walk(0, [])
    return [(path, name) for path, name in out if path]


def analyse(src):
    """The crate's files by module path, and the edges {file: {file it uses: first line}}."""
    files = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("").parts
        if rel[0] != "bin" and rel != ("main",):
            files[() if rel == ("lib",) else rel[:-1] if rel[-1] == "mod" else rel] = f
    code = {mod: strip(f.read_text()) for mod, f in files.items()}
    for mod, text in list(code.items()):
        for m in TEST_MOD.finditer(text):
            if m.group(2) == ";":
                files.pop(mod + (m.group(1),), None)
                code.pop(mod + (m.group(1),), None)
    parents = {mod[:-1] for mod in files}
    scopes = {mod: {c[-1]: list(c) for c in files if c and c[:-1] == mod} for mod in files}
    reexports, uses = {}, {mod: [] for mod in files}

    def absolute(mod, path):  # crate-absolute segments of `path` written in `mod`, or None
        head, rest = path[0], path[1:]
        if head in ("crate", "$crate"):
            return rest
        if head == "self":
            return list(mod) + rest
        if head == "super":
            base = list(mod)
            while path and path[0] == "super":
                base, path = base[:-1], path[1:]
            return base + path
        return scopes[mod][head] + rest if head in scopes[mod] else None

    def resolve(segs, seen=()):  # the deepest existing module on `segs`, through re-exports
        n = max((i for i in range(len(segs) + 1) if tuple(segs[:i]) in files), default=0)
        key = (tuple(segs[:n]), segs[n] if n < len(segs) else None)
        if key in reexports and key not in seen:
            return resolve(reexports[key] + segs[n + 1 :], seen + (key,))
        return key[0]

    for mod, text in code.items():
        for m in USE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            for path, name in expand(m.group(2)):
                if (segs := absolute(mod, path)) is None:
                    continue
                if m.group(1) and mod in parents:
                    reexports[mod, name] = segs
                elif tuple(segs) in files:
                    scopes[mod][name] = segs
                else:
                    uses[mod].append((line, segs))
        text = USE.sub(lambda m: blank(m.group(0)), text)
        for m in PATH.finditer(text):
            path = [m.group(1)] + re.findall(r"\w+", m.group(2))
            if (segs := absolute(mod, path)) is not None:
                uses[mod].append((text.count("\n", 0, m.start()) + 1, segs))
    edges = {mod: {} for mod in files}
    for mod, found in uses.items():
        for line, segs in found:
            if (target := resolve(segs)) != mod:
                edges[mod][target] = min(line, edges[mod].get(target, line))
    return files, edges


def shortest_path(edges, start, goal, inside):
    """Files from `start` to `goal` (both included) staying `inside` (breadth-first)."""
    prev, queue = {start: None}, [start]
    for v in queue:
        for w in edges[v]:
            if w in inside and w not in prev:
                prev[w] = v
                queue.append(w)
    path = [goal]
    while path[-1] != start:
        path.append(prev[path[-1]])
    return path[::-1]


def main(dirs):
    status = 0
    for src in map(Path, dirs):
        files, edges = analyse(src)
        name = {mod: str(f.relative_to(src)) for mod, f in files.items()}
        reach = {}
        for v in edges:  # every file reachable from v
            reach[v], stack = set(), [v]
            while stack:
                for w in edges[stack.pop()]:
                    if w not in reach[v]:
                        reach[v].add(w)
                        stack.append(w)
        components = {frozenset(w for w in reach[v] if v in reach[w]) for v in edges if v in reach[v]}
        if not components:
            print(f"{src}: no cycles ({len(files)} files)")
        for comp in sorted(components, key=lambda c: sorted(map(name.get, c))):
            status = 1
            start = min(comp, key=name.get)
            print(f"{src}: cycle of {len(comp)} files: {', '.join(sorted(map(name.get, comp)))}")
            back = next(w for w in sorted(comp, key=name.get) if start in edges[w])
            path = shortest_path(edges, start, back, comp) + [start]
            for a, b in zip(path, path[1:]):
                line = edges[a][b]
                source = files[a].read_text().splitlines()[line - 1].strip()
                print(f"  {name[a]}:{line} uses {name[b]}:  {source}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src"]))
