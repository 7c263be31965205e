#!/usr/bin/env python3
"""Floods a local `xdm-connect serve` with idle connections, then with stalled request bodies,
and prints what it held: resident memory (VmRSS), open file descriptors, whether `/healthz`
still answered on a fresh connection, and how many of the client's connections the bridge kept.
Loopback only, bounded in time (about a minute) and size (the counts below).

    cargo build --release -p xdm-app
    scripts/abuse.py                                  # ./target/release/xdm-connect
    scripts/abuse.py --bin /tmp/old/xdm-connect       # another build, e.g. before a change

The bridge runs with a minimal configuration (a SQLite store in a temporary directory, an X
consumer secret so that webhooks are checked, nothing else: `/healthz` answers 503 "degraded",
which counts as answering) and, as in the finding it measures (docs/security.md), a limit of
1,024 open files. Phases:

1. `--idle` connections that send nothing, held `--hold` seconds;
2. `--stalled` POSTs to /webhooks/x announcing `--body` bytes, of which all but the last byte are
   sent (the most memory each can make the bridge hold before its signature is checked), held
   `--hold` seconds;
3. everything closed; memory once more.

Only the standard library: it runs wherever the test suite runs (Python 3).
"""

import argparse
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def get(url, token=None, timeout=3.0):
    """(status, seconds) of a GET on a fresh connection; status None when nothing answered."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, time.monotonic() - start
    except urllib.error.HTTPError as e:
        return e.code, time.monotonic() - start
    except (OSError, urllib.error.URLError):
        return None, time.monotonic() - start


def still_open(sock):
    """Whether the server has not closed this connection (no EOF, no reset)."""
    try:
        sock.setblocking(False)
        data = sock.recv(16, socket.MSG_PEEK)
        return data != b"" and not data.startswith(b"HTTP/1.1 4") and not data.startswith(b"HTTP/1.1 5")
    except BlockingIOError:
        return True
    except OSError:
        return False


def sample(pid, public, admin, token, socks, label, rows):
    health, seconds = get(f"{public}/healthz")
    admin_health = get(f"{admin}/healthz", token)[0] if admin else None
    row = {
        "phase": label,
        "rss_mb": rss_mb(pid),
        "fds": open_fds(pid),
        "held": sum(1 for s in socks if still_open(s)),
        "healthz": f"{health} in {seconds:.2f}s" if health else f"no answer ({seconds:.1f}s)",
        "admin_healthz": admin_health,
    }
    rows.append(row)
    print(
        f"{row['phase']:<28} rss {row['rss_mb']:7.1f} MB  fds {row['fds']:5}  "
        f"held {row['held']:5}/{len(socks):<5} /healthz {row['healthz']:<18} admin {row['admin_healthz']}",
        flush=True,
    )
    return row


def connect(port, timeout=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="target/release/xdm-connect")
    p.add_argument("--idle", type=int, default=1100)
    p.add_argument("--stalled", type=int, default=300)
    p.add_argument("--body", type=int, default=1024 * 1024)
    p.add_argument("--hold", type=float, default=20.0, help="seconds each flood is held")
    p.add_argument("--nofile", type=int, default=1024, help="the bridge's open-file limit")
    a = p.parse_args()
    if not os.path.isfile(a.bin):
        sys.exit(f"no binary at {a.bin}: cargo build --release -p xdm-app")

    # The client needs more files than the bridge may have.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.idle + a.stalled + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    port, admin_port = free_port(), free_port()
    token = secrets.token_hex(32)
    public, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    tmp = tempfile.TemporaryDirectory(prefix="xdm-abuse-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RUST_LOG": "warn",
        "NO_COLOR": "1",
        "XDM_LISTEN": f"127.0.0.1:{port}",
        "XDM_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        "XDM_ADMIN_TOKEN": token,
        "XDM_STORE": f"sqlite:{tmp.name}/abuse.db",
        "XDM_X_CONSUMER_SECRET": "abuse-test-consumer-secret",
    }
    log = open(os.path.join(tmp.name, "bridge.log"), "w")

    def limit_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (a.nofile, a.nofile))

    bridge = subprocess.Popen(
        [a.bin, "serve"], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=limit_files
    )
    try:
        deadline = time.monotonic() + 20
        while get(f"{public}/healthz", timeout=0.5)[0] is None:
            if bridge.poll() is not None or time.monotonic() > deadline:
                log.flush()
                sys.exit("the bridge did not start:\n" + open(log.name).read()[-3000:])
            time.sleep(0.1)
        if get(f"{admin}/healthz", token)[0] is None:
            admin = None  # a build without the admin listener
        pid = bridge.pid
        print(f"bridge {a.bin} pid {pid}, open-file limit {a.nofile}; {public}, admin {admin or 'none'}")
        rows = []
        sample(pid, public, admin, token, [], "start", rows)

        # 1. Idle connections.
        idle = []
        for _ in range(a.idle):
            try:
                idle.append(connect(port))
            except OSError:
                pass
        time.sleep(1)
        sample(pid, public, admin, token, idle, f"{a.idle} idle, 1 s", rows)
        end = time.monotonic() + a.hold
        while time.monotonic() < end - 1:
            time.sleep(min(5, max(0.1, end - time.monotonic() - 1)))
            sample(pid, public, admin, token, idle, f"{a.idle} idle, held", rows)
        for s in idle:
            s.close()
        time.sleep(2)
        sample(pid, public, admin, token, [], "idle closed", rows)

        # 2. Stalled bodies: all but the last byte.
        stalled, refused = [], 0
        head = (
            f"POST /webhooks/x HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n"
            f"Content-Length: {a.body}\r\n\r\n"
        ).encode()
        chunk = b"a" * (a.body - 1)
        for _ in range(a.stalled):
            try:
                s = connect(port)
                s.sendall(head)
                s.sendall(chunk)
                stalled.append(s)
            except OSError:
                refused += 1
        time.sleep(1)
        peak = sample(pid, public, admin, token, stalled, f"{a.stalled} stalled, 1 s", rows)
        end = time.monotonic() + a.hold
        while time.monotonic() < end - 1:
            time.sleep(min(5, max(0.1, end - time.monotonic() - 1)))
            row = sample(pid, public, admin, token, stalled, f"{a.stalled} stalled, held", rows)
            if row["rss_mb"] > peak["rss_mb"]:
                peak = row
        print(f"stalled bodies the bridge refused while they were sent: {refused}")
        for s in stalled:
            s.close()
        time.sleep(2)
        sample(pid, public, admin, token, [], "all closed", rows)
        base = rows[0]["rss_mb"]
        top = max(r["rss_mb"] for r in rows)
        print(f"RSS: {base:.1f} MB at start, {top:.1f} MB at most, {rows[-1]['rss_mb']:.1f} MB at the end")
        print(f"bridge alive: {bridge.poll() is None}")
    finally:
        bridge.terminate()
        try:
            bridge.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bridge.kill()
        log.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
