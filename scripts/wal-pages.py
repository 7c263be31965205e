#!/usr/bin/env python3
"""Which tables and indexes the pages in a SQLite write-ahead log belong to.

    scripts/wal-pages.py DATABASE WAL

Reads the frames of WAL (the `-wal` file beside DATABASE) up to the first one of an older
generation (its salts differ from the header's), counts them and the commits among them, and
says, per b-tree, how many of the frames held one of its pages: a map of what each commit writes,
and so of what a commit costs in `pwrite`s, checksums and checkpoint copies
(docs/performance.md, "Where a commit's pages go").

Run it on copies taken while the bridge runs (`cp bench.db bench.db-wal` into another folder):
opening the copy reads the log into it, so the pages the log added are known too; closing it
copies the log into the database and removes it (take a new copy to run it again). Page ownership
comes from SQLite's `dbstat` table (compiled into Python's sqlite3 module on common builds).
Only Python's standard library is needed.
"""

import collections
import sqlite3
import struct
import sys

WAL_HEADER = struct.Struct(">IIIIIIII")
FRAME_HEADER = struct.Struct(">IIII")
FRAME_HEADER_SIZE = 24


def frames(wal: bytes):
    """The page number of each frame of the log's current generation, and its commit flag."""
    if len(wal) < WAL_HEADER.size:
        raise SystemExit("not a WAL file: shorter than its header")
    magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = WAL_HEADER.unpack_from(wal)
    if magic not in (0x377F0682, 0x377F0683):
        raise SystemExit(f"not a WAL file: magic {magic:#x}")
    offset = WAL_HEADER.size
    while offset + FRAME_HEADER_SIZE + page_size <= len(wal):
        page, db_size, frame_salt1, frame_salt2 = FRAME_HEADER.unpack_from(wal, offset)
        if (frame_salt1, frame_salt2) != (salt1, salt2):
            break
        yield page, db_size != 0
        offset += FRAME_HEADER_SIZE + page_size


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    database, wal_path = sys.argv[1], sys.argv[2]
    with open(wal_path, "rb") as f:
        log = list(frames(f.read()))
    if not log:
        raise SystemExit("the log holds no frame of its current generation")
    commits = sum(1 for _, commit in log if commit)
    conn = sqlite3.connect(database)
    try:
        owner = dict((page, name) for name, page in conn.execute("SELECT name, pageno FROM dbstat"))
    finally:
        conn.close()
    counts = collections.Counter(owner.get(page, "(free or unknown)") for page, _ in log)
    print(f"{len(log)} frames, {commits} commits, {len(log) / max(commits, 1):.2f} frames per commit")
    for name, n in counts.most_common():
        print(f"  {name:32s} {n:7d}  {100 * n / len(log):5.1f} %  {n / max(commits, 1):6.2f} per commit")


if __name__ == "__main__":
    main()
