#!/usr/bin/env python3
"""Cost per million DMs on AWS, from measurements: the Lambda `bootstrap` run as the functions of
deploy/template.yaml, on loopback, with every AWS call it makes counted.

What runs (nothing leaves 127.0.0.1):
* moto (scripts/local_aws.py): the five DynamoDB tables, the inbound SQS FIFO queue, the SSM
  parameter and the Secrets Manager secret in the AWS sample's layout, as the template has them;
* the project's sandbox (`xdm-connect sandbox`, from a build with the sandbox feature): Amazon
  Connect, its SNS chat stream, and the X API;
* four `bootstrap` processes (webhook, worker, outbound, sweeper), each behind its own Lambda
  Runtime API (scripts/lambda_runtime_emulator.py), with the environment and memory size the
  template gives them;
* this script plays the rest of AWS: API Gateway (HTTP API payload v2 events carrying signed X
  webhook deliveries), the SQS event source mapping (ReceiveMessage, invoke the worker,
  DeleteMessageBatch) and SNS → Lambda (the sandbox's SNS HTTP deliveries, filtered by the
  template's policy, turned into Lambda SNS events).

Two passes over the same store and chats:
1. count — AWS_ENDPOINT_URL points at a counting proxy in front of moto: calls by service and
   operation; DynamoDB read and write request units computed from the items' sizes by DynamoDB's
   on-demand rules (the proxy reads each item before and after every write straight from moto;
   the rules are in `DynamoAccountant`);
2. time — fresh processes talk to moto directly (no proxy in the way): per invocation the time
   from handing the event out to the answer (Lambda's billed duration, rounded up to 1 ms), the
   CPU time the process spent in between, its peak RSS (VmHWM) and the bytes it logged. The first
   invocation of each function is its cold start.

In each pass, after a warm-up: N DMs from C customers into their open chats, one at a time (the
webhook, then the worker on the FIFO wake-up), then N agent replies (each streamed by the sandbox
through SNS to the outbound function), then a few idle sweeps. The report gives the figures per
message and the cost per million DMs each way for this bridge (x86_64 and arm64 prices, the same
durations) and for the AWS sample's design (SAMPLE, from reading its code, and the handler times
measured in docs/performance.md), with the prices of PRICES (sources: docs/performance.md).

    ./scripts/venv.sh                       # moto, into ./.venv
    ./scripts/build-lambda.sh               # target/lambda/xdm-connect.zip: the bootstrap measured
    cargo build -p xdm-app                  # a binary with the sandbox (target/debug/xdm-connect)
    python3 scripts/lambda-cost.py [--messages 500] [--customers 10] [--json FILE]
                                   [--bootstrap PATH] [--sandbox-bin PATH] [--reorder-window-ms MS]
    python3 scripts/lambda-cost.py --report FILE      # the report of a run saved with --json

Measures, asserts no speed: it stops with an error only when the bridge misbehaves (a DM not
delivered, a call answered with an error).
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import math
import os
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no scripts/__pycache__ from the modules below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lambda_runtime_emulator import ACCOUNT, RuntimeApi, lambda_environment  # noqa: E402
from local_aws import ROOT, TABLES, call, create_tables, free_port, start_moto  # noqa: E402

DATE = "2026-12-05"
TABLE_PREFIX = "cost-"
QUEUE_NAME = "xdm-cost-inbound.fifo"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE_NAME}"
# The template's subscription filter policy (no echo of the customer's own messages).
ECHO_FILTER_POLICY = ('{"$or":[{"ParticipantRole":[{"anything-but":["CUSTOMER"]}]},'
                      '{"ParticipantRole":[{"exists":false}]}]}')
# Function timeouts of deploy/template.yaml (the webhook's own, the Globals' for the others).
TIMEOUT_S = {"webhook": 10, "worker": 120, "outbound": 120, "sweeper": 120}
# At 1,769 MB a function has one vCPU; below, the share of it is proportional to memory
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
ONE_VCPU_MB = 1769

# us-east-1 list prices, on demand, read on DATE; each price's source is in docs/performance.md
# ("Cost per million DMs on AWS"). USD per unit.
PRICES = {
    "lambda_request": 0.20e-6,
    "lambda_gb_s_x86_64": 0.0000166667,
    "lambda_gb_s_arm64": 0.0000133334,
    "http_api_request": 1.00e-6,       # API Gateway HTTP API, first 300 M a month
    "rest_api_request": 3.50e-6,       # API Gateway REST API, first 333 M a month
    "dynamodb_wru": 0.625e-6,
    "dynamodb_rru": 0.125e-6,
    "sqs_fifo_request": 0.50e-6,       # per 64 KB chunk
    "sns_publish": 0.50e-6,            # standard topic, per 64 KB chunk; deliveries to Lambda free
    "secrets_manager_call": 0.05 / 10_000,
    "ssm_get_parameter": 0.0,          # standard parameter, standard throughput
}

# The AWS sample (aws-samples/sample-amazon-connect-social-integration, x-dm-connect-chat/, read
# on DATE): what one message costs it, from its code. Handler time: docs/performance.md measured
# its Python handler warm at ~54 ms of CPU and ~67 ms wall per message; that figure is applied to
# each of its invocations below (the echo and outbound handlers were not measured separately).
SAMPLE = {
    "memory_mb": 128,                  # lambdas/project_lambdas.py: memory_size=128, Python 3.14
    "wall_ms": 67.0,
    "cpu_ms": 54.0,
    # messages_in per DM: REST API request; GetParameter (every request); GetSecretValue (every
    # POST); Query of the byUser GSI (eventually consistent, one small item: 0.5 RRU); then
    # participant SendMessage. Connect streams the customer's message back through SNS and the
    # topic has no filter policy: messages_out runs for it too (GetSecretValue, then drops it).
    "inbound": {"invocations": 2, "rest_api": 1, "ssm": 1, "secrets": 2, "rru": 0.5, "wru": 0.0,
                "sns_publish": 1},
    # messages_out per agent reply: GetSecretValue in the handler; Query of the table by
    # contactId (0.5 RRU); CreateDm. X's Account Activity API (the sample's) delivers the
    # business's own sent DM back to the webhook: messages_in runs for it (GetParameter,
    # GetSecretValue, the echo dropped after parsing).
    "outbound": {"invocations": 2, "rest_api": 1, "ssm": 1, "secrets": 2, "rru": 0.5, "wru": 0.0,
                 "sns_publish": 1},
}


# ------------------------------------------------------------------------------------------
# Small HTTP helpers
# ------------------------------------------------------------------------------------------

def http_json(method: str, url: str, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read()
            return resp.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(what: str, timeout_s: float, check):
    end = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------------------------------
# DynamoDB request units, from item sizes
# ------------------------------------------------------------------------------------------

def number_size(text: str) -> int:
    """A number attribute's value: about one byte per two significant digits, plus one."""
    mantissa = text.lstrip("+-").split("e")[0].split("E")[0].replace(".", "")
    digits = mantissa.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return number_size(v)
    if kind == "B":
        return len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(number_size(n) for n in v)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in v)
    if kind == "L":
        return 3 + sum(value_size(e) + 1 for e in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(e) + 1 for k, e in v.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item) -> int:
    """Attribute names plus values (docs.aws.amazon.com/amazondynamodb/latest/developerguide/
    CapacityUnitCalculations.html)."""
    return sum(len(k.encode()) + value_size(v) for k, v in (item or {}).items())


def units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


class DynamoAccountant:
    """Read and write request units of each call, by the on-demand rules:

    * write: 1 WRU per started KB of the larger of the item before and after (PutItem, UpdateItem),
      of the item deleted (DeleteItem); a write whose condition fails still costs the existing
      item's size (at least 1 WRU); in TransactWriteItems every action (ConditionCheck included)
      costs twice that;
    * each global secondary index the write changes: 1 WRU per started KB of the index entry (its
      keys and projected attributes) put or deleted; an entry whose index key changes is deleted
      and put (2 writes); a KEYS_ONLY entry whose keys stay is not written. Counted once, also for
      writes inside a transaction;
    * read: 1 RRU per started 4 KB strongly consistent, 0.5 eventually consistent (GSI queries
      always); GetItem of a missing item still costs one unit; BatchGetItem rounds each item;
      Query and Scan round the total of what they read (a Scan reads the whole table);
      TransactGetItems twice a strongly consistent read.
    """

    def __init__(self, moto: str, prefix: str):
        self.moto = moto
        self.prefix = prefix

    def spec(self, table: str):
        return TABLES.get(table[len(self.prefix):]) if table.startswith(self.prefix) else None

    def fetch(self, table: str, key: dict):
        out = call(self.moto, "dynamodb", "DynamoDB_20120810.GetItem",
                   {"TableName": table, "Key": key, "ConsistentRead": True})
        return out.get("Item")

    def scan_all(self, table: str) -> int:
        total, start = 0, None
        while True:
            req = {"TableName": table, "ConsistentRead": True}
            if start:
                req["ExclusiveStartKey"] = start
            out = call(self.moto, "dynamodb", "DynamoDB_20120810.Scan", req)
            total += sum(item_size(i) for i in out.get("Items", []))
            start = out.get("LastEvaluatedKey")
            if not start:
                return total

    def _actions(self, op: str, req: dict):
        """(kind, table, key) of every item a write touches."""
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            table = req["TableName"]
            spec = self.spec(table)
            if op == "PutItem":
                key = {spec["key"]: req["Item"][spec["key"]]} if spec else None
            else:
                key = req["Key"]
            return [(op, table, key)]
        if op == "TransactWriteItems":
            out = []
            for action in req["TransactItems"]:
                (kind, body), = action.items()
                table = body["TableName"]
                spec = self.spec(table)
                if kind == "Put":
                    key = {spec["key"]: body["Item"][spec["key"]]} if spec else None
                else:
                    key = body["Key"]
                out.append((kind, table, key))
            return out
        return []

    def before(self, op: str, req: dict):
        return [(kind, table, key, self.fetch(table, key) if key else None)
                for kind, table, key in self._actions(op, req)]

    def after(self, op: str, req: dict, status: int, resp: dict, before, tally: "Tally"):
        ok = status == 200
        error = (resp or {}).get("__type", "") if not ok else ""
        if op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"):
            factor = 2 if op == "TransactWriteItems" else 1
            if not ok:
                tally.add_ddb(op, "failed", 1)
            for kind, table, key, old in before:
                new = self.fetch(table, key) if (key and ok) else old
                if not ok:  # condition failed or transaction cancelled: the existing item's size
                    wru = units(item_size(old), 1024)
                elif kind in ("DeleteItem", "Delete"):
                    wru = units(item_size(old), 1024)
                elif kind == "ConditionCheck":
                    wru = units(item_size(old), 1024)
                else:
                    wru = units(max(item_size(old), item_size(new)), 1024)
                tally.add_ddb(op, f"wru {table}", wru * factor)
                if ok:
                    for index, gsi_wru in self.gsi_writes(table, old, new):
                        tally.add_ddb(op, f"wru {table}/{index}", gsi_wru)
            return
        if not ok:
            if "ConditionalCheckFailed" not in error:
                tally.add_ddb(op, "failed", 1)
            return
        if op == "GetItem":
            rru = units(item_size(self.fetch(req["TableName"], req["Key"])), 4096)
            tally.add_ddb(op, f"rru {req['TableName']}", rru * (1 if req.get("ConsistentRead") else 0.5))
        elif op == "BatchGetItem":
            for table, spec in req["RequestItems"].items():
                for key in spec["Keys"]:
                    rru = units(item_size(self.fetch(table, key)), 4096)
                    tally.add_ddb(op, f"rru {table}", rru * (1 if spec.get("ConsistentRead") else 0.5))
        elif op == "Query":
            size = sum(item_size(i) for i in resp.get("Items", []))
            strong = req.get("ConsistentRead") and not req.get("IndexName")
            name = req["TableName"] + (f"/{req['IndexName']}" if req.get("IndexName") else "")
            tally.add_ddb(op, f"rru {name}", units(size, 4096) * (1 if strong else 0.5))
            if resp.get("ScannedCount", 0) != resp.get("Count", 0):
                tally.add_ddb(op, "filtered (units undercounted)", 1)
        elif op == "Scan":
            size = self.scan_all(req["TableName"])
            tally.add_ddb(op, f"rru {req['TableName']}", units(size, 4096) * (1 if req.get("ConsistentRead") else 0.5))
        elif op == "TransactGetItems":
            for action in req["TransactItems"]:
                get = action["Get"]
                tally.add_ddb(op, f"rru {get['TableName']}", 2 * units(item_size(self.fetch(get["TableName"], get["Key"])), 4096))

    def gsi_writes(self, table: str, old, new):
        spec = self.spec(table)
        if not spec:
            return []
        out = []
        for index, hash_key, range_key, projection in spec["gsis"]:
            keys = [hash_key] + ([range_key] if range_key else [])

            def entry(item):
                if not item or any(k not in item for k in keys):
                    return None
                if projection == "ALL":
                    return item
                keep = set(keys) | {spec["key"]}
                return {k: v for k, v in item.items() if k in keep}

            a, b = entry(old), entry(new)
            if a is None and b is None:
                continue
            if a is None:
                out.append((index, units(item_size(b), 1024)))
            elif b is None:
                out.append((index, units(item_size(a), 1024)))
            elif any(a[k] != b[k] for k in keys):
                out.append((index, units(item_size(a), 1024) + units(item_size(b), 1024)))
            elif a != b:
                out.append((index, units(item_size(b), 1024)))
        return out


# ------------------------------------------------------------------------------------------
# The counting proxy between the bootstrap and moto
# ------------------------------------------------------------------------------------------

class Tally:
    """Calls by "service Operation", and DynamoDB units by (operation, what)."""

    def __init__(self):
        self.calls = Counter()
        self.ddb = Counter()
        self.upstream_ms = Counter()  # time moto took to answer, by "service Operation"
        self.lock = threading.Lock()

    def add_call(self, name: str):
        with self.lock:
            self.calls[name] += 1

    def add_ddb(self, op: str, what: str, n):
        with self.lock:
            self.ddb[(op, what)] += n

    def add_latency(self, name: str, ms: float):
        with self.lock:
            self.upstream_ms[name] += ms

    def snapshot(self):
        with self.lock:
            return Counter(self.calls), Counter(self.ddb), Counter(self.upstream_ms)


def diff(later, earlier):
    """What each counter of a snapshot gained since an earlier one."""
    return tuple(Counter({k: v - old.get(k, 0) for k, v in new.items() if v != old.get(k, 0)})
                 for new, old in zip(later, earlier))


class CountingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, accountant: DynamoAccountant):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream.replace("http://", "").rstrip("/")
        self.accountant = accountant
        self.tally = Tally()
        self.serial = threading.Lock()  # moto serves one request at a time anyway
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length", "host"}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _forward(self, body: bytes):
        conn = http.client.HTTPConnection(self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = self.server.upstream
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = (resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], data)
        conn.close()
        return out

    def _handle(self):
        server: CountingProxy = self.server
        body = self._body()
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", self.headers.get("Authorization", ""))
        service = scope.group(1) if scope else "?"
        target = self.headers.get("X-Amz-Target", "")
        op = target.split(".")[-1] if target else ""
        if not op and body:
            action = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
            op = action.group(1).decode() if action else "?"
        with server.serial:
            before = None
            req = None
            if service == "dynamodb":
                req = json.loads(body or b"{}")
                before = server.accountant.before(op, req)
            started = time.perf_counter()
            status, headers, data = self._forward(body)
            server.tally.add_latency(f"{service} {op}", (time.perf_counter() - started) * 1000)
            if service == "dynamodb":
                try:
                    resp = json.loads(data) if data else {}
                except ValueError:
                    resp = {}
                server.accountant.after(op, req, status, resp, before, server.tally)
        server.tally.add_call(f"{service} {op}" + ("" if status == 200 else f" ({status})"))
        head = f"HTTP/1.1 {status} {http.client.responses.get(status, '')}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers) + f"Content-Length: {len(data)}\r\n\r\n"
        self.wfile.write(head.encode() + data)

    do_POST = _handle
    do_GET = _handle


# ------------------------------------------------------------------------------------------
# The sandbox (Connect, SNS, X) and the SNS → Lambda leg
# ------------------------------------------------------------------------------------------

class Sandbox:
    def __init__(self, binary: str, workdir: str):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(os.path.join(workdir, "sandbox.log"), "wb")
        self.proc = subprocess.Popen([binary, "sandbox", "--listen", f"127.0.0.1:{port}"], cwd=workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "RUST_LOG": "warn"})

        def up():
            if self.proc.poll() is not None:
                sys.exit(f"the sandbox ({binary}) exited; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until("the sandbox", 30, up)
        _, self.info = http_json("GET", self.base + "/_sandbox")
        self.config = self.info["config"]
        self.topic_arn = self.info["sns_topic_arn"]

    def ctl(self, method: str, path: str, body=None):
        status, out = http_json(method, self.base + "/_sandbox" + path, body)
        if status >= 300:
            sys.exit(f"sandbox {method} {path}: {status} {out!r}")
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class SnsEndpoint(ThreadingHTTPServer):
    """The HTTPS endpoint SNS would call, here only to turn each notification the sandbox posts
    into the event Lambda gets from an SNS subscription (what the template subscribes)."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SnsHandler)
        self.events = queue.Queue()
        self.received = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/sns"


class _SnsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if msg.get("Type") == "SubscriptionConfirmation":
            urllib.request.urlopen(msg["SubscribeURL"], timeout=10).read()
        elif msg.get("Type") == "Notification":
            self.server.received += 1
            sns = {
                "Type": msg["Type"], "MessageId": msg["MessageId"], "TopicArn": msg["TopicArn"],
                "Subject": msg.get("Subject"), "Message": msg["Message"], "Timestamp": msg["Timestamp"],
                "SignatureVersion": msg["SignatureVersion"], "Signature": msg["Signature"],
                "SigningCertUrl": msg["SigningCertURL"], "UnsubscribeUrl": msg.get("UnsubscribeURL"),
                "MessageAttributes": msg.get("MessageAttributes", {}),
            }
            self.server.events.put({"Records": [{
                "EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": f"{msg['TopicArn']}:{uuid.uuid4()}", "Sns": sns}]})


# ------------------------------------------------------------------------------------------
# The events the functions get
# ------------------------------------------------------------------------------------------

API_ID = "a1b2c3d4e5"
API_HOST = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def http_api_event(method: str, path: str, headers: dict, body=None, query: str = "") -> dict:
    """An API Gateway HTTP API (payload v2) event for a route of the template."""
    now = time.time()
    event = {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path, "rawQueryString": query,
        "headers": {"host": API_HOST, "user-agent": "X-Webhooks", "x-forwarded-for": "199.59.150.10",
                    "x-forwarded-port": "443", "x-forwarded-proto": "https",
                    "x-amzn-trace-id": f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}", **headers},
        "requestContext": {
            "accountId": ACCOUNT, "apiId": API_ID, "domainName": API_HOST, "domainPrefix": API_ID,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "199.59.150.10",
                     "userAgent": "X-Webhooks"},
            "requestId": uuid.uuid4().hex[:16], "routeKey": f"{method} {path}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if body is not None:
        event["body"] = body
    return event


def legacy_user(user_id: str, name: str, screen_name: str, followers: int) -> dict:
    """A user of an Account Activity delivery's `users` map, shaped like the captured one."""
    image = "https://pbs.twimg.com/profile_images/1603384697035182080/iQFwc3l3_normal.jpg"
    return {"id": user_id, "created_timestamp": "1247109333000", "name": name, "screen_name": screen_name,
            "location": "San Francisco, CA",
            "description": "Customer of Acme. Opinions are my own. Soy desierto, selva, nieve y volcán…",
            "protected": False, "verified": False, "followers_count": followers, "friends_count": 1050,
            "statuses_count": 32629, "profile_image_url": image.replace("https://", "http://"),
            "profile_image_url_https": image}


class Customers:
    """Simulated X customers, registered with the sandbox (the outbound DMs go to them)."""

    SNOWFLAKE_EPOCH_MS = 1_288_834_974_657

    def __init__(self, sandbox: Sandbox, n: int):
        self.business = sandbox.config["x"]["business"]
        self.ids = [str(3_100_000_000 + i) for i in range(n)]
        self.users = {}
        for i, cid in enumerate(self.ids):
            sandbox.ctl("POST", "/x/users", {"id": cid, "name": f"Cost Customer {i}",
                                             "username": f"costcustomer{i}"})
            self.users[cid] = legacy_user(cid, f"Cost Customer {i}", f"costcustomer{i}", 1146)
        self.users[self.business["id"]] = legacy_user(self.business["id"], self.business["name"],
                                                      self.business["username"], 6131)
        self.seq = 0

    def dm_body(self, customer: str, text: str) -> str:
        """One Account Activity `message_create` delivery (~1.5 KB, like the captured fixture)."""
        self.seq += 1
        now = int(time.time() * 1000)
        event_id = str(((now - self.SNOWFLAKE_EPOCH_MS) << 22) + self.seq % 4096)
        business = self.business["id"]
        return json.dumps({
            "for_user_id": business,
            "direct_message_events": [{
                "type": "message_create", "id": event_id, "created_timestamp": str(now),
                "message_create": {"target": {"recipient_id": business}, "sender_id": customer,
                                   "message_data": {"text": text, "entities": {
                                       "hashtags": [], "symbols": [], "user_mentions": [], "urls": []}}}}],
            "users": {customer: self.users[customer], business: self.users[business]},
        }, ensure_ascii=False, separators=(",", ":"))


def signed(secret: str, data: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


# ------------------------------------------------------------------------------------------
# The functions
# ------------------------------------------------------------------------------------------

def process_cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid` (schedstat: nanoseconds on a CPU)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def process_memory_kb(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0])
    return out


# Every bootstrap started, so that an early exit leaves none behind (they would wait on their
# Runtime API forever).
SPAWNED = []


class Function:
    """One function of the template: a bootstrap process behind its Runtime API. Invocations
    are serialised, as in one Lambda execution environment."""

    def __init__(self, role: str, bootstrap: str, env: dict, memory_mb: int, workdir: str):
        self.role = role
        self.name = f"xdm-cost-{role}"
        self.memory_mb = memory_mb
        self.timeout_s = TIMEOUT_S[role]
        self.runtime = RuntimeApi(self.name, probe=lambda: process_cpu_ns(self.proc.pid))
        self.log_path = os.path.join(workdir, f"{self.name}-{uuid.uuid4().hex[:6]}.log")
        self.log = open(self.log_path, "wb")
        full_env = {**env, **lambda_environment(self.runtime.address, self.name, memory_mb)}
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen([bootstrap], env=full_env, cwd=workdir, stdout=self.log, stderr=self.log)
        SPAWNED.append(self.proc)
        self.records = []
        self.phase = "warm-up"
        self.lock = threading.Lock()

    def invoke(self, event):
        with self.lock:
            log_before = os.path.getsize(self.log_path)
            try:
                inv = self.runtime.invoke(event, self.timeout_s)
            except TimeoutError as e:
                sys.exit(f"{self.name}: {e}; log: {self.log_path}")
            mem = process_memory_kb(self.proc.pid)
            cold = not self.records
            self.records.append({
                "phase": self.phase, "cold": cold,
                # Lambda's Init Duration: from the start to the runtime's first /next.
                "init_ms": (self.runtime.first_poll_at - self.spawned_at) * 1000 if cold else 0.0,
                "duration_ms": inv.duration_ms,
                "cpu_ms": (inv.probe_answered - inv.probe_handed) / 1e6,
                "hwm_kb": mem.get("VmHWM", 0), "rss_kb": mem.get("VmRSS", 0),
                "log_bytes": os.path.getsize(self.log_path) - log_before,
                "error": inv.error,
            })
            if inv.error:
                sys.exit(f"{self.name} answered an error: {inv.payload[:500]!r}; log: {self.log_path}")
            return inv.json()

    def of_phase(self, phase: str):
        return [r for r in self.records if r["phase"] == phase]

    def stop(self):
        # SIGTERM, as Lambda sends at shutdown: the bootstrap exits normally (an instrumented one
        # then writes its profile: scripts/build-pgo.sh); SIGKILL if it does not within 10 s.
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.runtime.close()
        self.log.close()


class Deployment:
    """The four functions of the template on one AWS endpoint (the proxy, or moto itself), and
    the legs AWS would play between them."""

    def __init__(self, label, args, bootstrap, aws_endpoint, moto, setup, sandbox, sns, customers, memory_mb, workdir):
        self.label = label
        self.moto = moto
        self.setup = setup
        self.sandbox = sandbox
        self.sns = sns
        self.customers = customers
        self.esm_requests = Counter()
        env = {
            "PATH": os.environ.get("PATH", ""), "HOME": workdir,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_ENDPOINT_URL_CONNECT": sandbox.base, "AWS_ENDPOINT_URL_CONNECTPARTICIPANT": sandbox.base,
            "XDM_X_API_URL": sandbox.base,
            # deploy/template.yaml, Globals.Function.Environment
            "XDM_LEASE_MS": "150000", "XDM_STORE": f"dynamodb:{TABLE_PREFIX}",
            "XDM_CONNECT_TOPIC_ARN": sandbox.topic_arn,
            "CONFIG_PARAM_NAME": setup["parameter"], "SECRET_ARN": setup["secret_arn"],
            "XDM_AWS_CONFIG_REFRESH_SECS": "300", "XDM_LOG_FORMAT": "json", "RUST_LOG": "info",
            "XDM_METRICS_NAMESPACE": "xdm-connect/xdm-cost",
        }
        if args.reorder_window_ms is not None:
            env["XDM_REORDER_WINDOW_MS"] = str(args.reorder_window_ms)
        # Passed on when set: where an instrumented bootstrap writes its profile; the async
        # runtime's worker threads (one by default), to compare another count.
        for name in ("LLVM_PROFILE_FILE", "TOKIO_WORKER_THREADS"):
            if name in os.environ:
                env[name] = os.environ[name]
        self.functions = {}
        for role in ("webhook", "worker", "outbound", "sweeper"):
            extra = {"XDM_INBOUND_QUEUE_URL": setup["queue_url"]} if role == "webhook" else {}
            f = Function(role, bootstrap, {**env, **extra}, memory_mb, workdir)
            # One start at a time, as independent execution environments would be.
            wait_until(f"{f.name}'s first poll", 30, lambda f=f: f.runtime.first_poll_at or f.proc.poll() is not None)
            if f.proc.poll() is not None:
                sys.exit(f"{f.name} exited at start; log: {f.log_path}")
            self.functions[role] = f

    def set_phase(self, phase: str):
        for f in self.functions.values():
            f.phase = phase

    def stop(self):
        for f in self.functions.values():
            f.stop()

    # -- the legs between the functions --

    def webhook_dm(self, customer: str, text: str):
        body = self.customers.dm_body(customer, text)
        sig = signed(self.sandbox.config["x"]["consumer_secret"], body.encode())
        out = self.functions["webhook"].invoke(http_api_event("POST", "/webhooks/x", {
            "content-type": "application/json", "content-length": str(len(body.encode())),
            "x-twitter-webhooks-signature": sig}, body))
        if out.get("statusCode") != 200:
            sys.exit(f"the webhook answered {out!r}")

    def wake_worker(self):
        """The event source mapping: the wake-ups waiting in the queue (a long poll would return
        them as soon as they arrive), one worker invocation with the batch, then the delete."""
        def receive():
            out = call(self.moto, "sqs", "AmazonSQS.ReceiveMessage", {
                "QueueUrl": self.setup["queue_url"], "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0,
                "AttributeNames": ["All"], "MessageSystemAttributeNames": ["All"]})
            return out.get("Messages")

        messages = wait_until("the wake-up in the FIFO queue", 10, receive)
        self.esm_requests["ReceiveMessage"] += 1
        records = [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "awsRegion": "us-east-1",
        } for m in messages]
        out = self.functions["worker"].invoke({"Records": records})
        failed = {f["itemIdentifier"] for f in out.get("batchItemFailures", [])}
        if failed:
            sys.exit(f"the worker reported failures: {out!r}")
        call(self.moto, "sqs", "AmazonSQS.DeleteMessageBatch", {
            "QueueUrl": self.setup["queue_url"],
            "Entries": [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]})
        self.esm_requests["DeleteMessageBatch"] += 1
        return len(messages)

    def deliver_sns(self, first_timeout_s=10.0):
        """SNS → Lambda: every notification that has arrived (at least one) to the outbound
        function, one invocation each. Returns how many."""
        n = 0
        try:
            event = self.sns.events.get(timeout=first_timeout_s)
        except queue.Empty:
            sys.exit("no SNS notification reached the outbound function's subscription")
        while True:
            out = self.functions["outbound"].invoke(event)
            if not isinstance(out, dict) or "accepted" not in out:
                sys.exit(f"the outbound function answered {out!r}")
            n += 1
            try:
                event = self.sns.events.get(timeout=0.05)
            except queue.Empty:
                return n

    # -- what a pass does --

    def cold_starts(self):
        """One invocation of each function that changes nothing (its cold start)."""
        self.set_phase("cold")
        token = "M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0"  # opaque base64, as X sends
        out = self.functions["webhook"].invoke(http_api_event("GET", "/webhooks/x", {}, None,
                                                              "crc_token=" + token))
        expected = base64.b64encode(hmac.new(self.sandbox.config["x"]["consumer_secret"].encode(),
                                             token.encode(), hashlib.sha256).digest()).decode()
        if out.get("statusCode") != 200 or expected not in out.get("body", ""):
            sys.exit(f"the CRC answer is wrong: {out!r}")
        lane = f"{self.customers.business['id']}:{self.customers.ids[0]}"
        self.functions["worker"].invoke({"Records": [{
            "messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps({"lane": lane}),
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": QUEUE_ARN, "awsRegion": "us-east-1"}]})
        foreign = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "x",
                                "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()),
                                        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:someone-else",
                                        "Message": "{}", "Timestamp": "2026-12-05T00:00:00.000Z",
                                        "SignatureVersion": "1", "Signature": "c2ln",
                                        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/x.pem",
                                        "MessageAttributes": {}}}]}
        self.functions["outbound"].invoke(foreign)
        self.functions["sweeper"].invoke({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                                          "source": "aws.events", "account": ACCOUNT, "time": "2026-12-05T00:00:00Z",
                                          "region": "us-east-1", "resources": [], "detail": {}})

    def expire_finished_jobs(self):
        """Deletes the finished jobs, straight on moto, between two messages: what DynamoDB's TTL
        does 7 days after a job finished. moto deep-copies every table a TransactWriteItems touches
        (to roll back a cancelled one), so without this its transactions slow down as the jobs
        table fills and each message would meet a slower emulator than the one before."""
        table = TABLE_PREFIX + "jobs"
        out = call(self.moto, "dynamodb", "DynamoDB_20120810.Scan", {
            "TableName": table, "ProjectionExpression": "pk", "FilterExpression": "#s IN (:done, :failed)",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":done": {"S": "done"}, ":failed": {"S": "failed"}}})
        for item in out.get("Items", []):
            call(self.moto, "dynamodb", "DynamoDB_20120810.DeleteItem", {"TableName": table, "Key": item})

    def inbound(self, phase: str, n: int, customers=None):
        self.set_phase(phase)
        customers = customers or self.customers.ids
        for i in range(n):
            self.webhook_dm(customers[i % len(customers)], f"{phase} message {i}: where is my order #{1000 + i}?")
            self.wake_worker()
            self.expire_finished_jobs()

    def outbound(self, phase: str, n: int, contacts):
        self.set_phase(phase)
        for i in range(n):
            self.sandbox.ctl("POST", f"/connect/contacts/{contacts[i % len(contacts)]}/message",
                             {"content": f"**{phase}** reply {i}: your order ships _tomorrow_."})
            self.deliver_sns()
            self.expire_finished_jobs()

    def sweeps(self, phase: str, n: int):
        self.set_phase(phase)
        for _ in range(n):
            self.functions["sweeper"].invoke({"version": "0", "id": str(uuid.uuid4()),
                                              "detail-type": "Scheduled Event", "source": "aws.events",
                                              "account": ACCOUNT, "time": "2026-12-05T00:00:00Z",
                                              "region": "us-east-1", "resources": [], "detail": {}})


# ------------------------------------------------------------------------------------------
# Set-up
# ------------------------------------------------------------------------------------------

def template_memory_mb() -> int:
    """The functions' memory as deploy/template.yaml deploys it by default: the global
    `MemorySize`, a number or the default of the parameter it names."""
    text = open(os.path.join(ROOT, "deploy/template.yaml")).read()
    globals_block = text[text.index("\nGlobals:"):text.index("\nResources:")]
    if re.findall(r"^\s+MemorySize:", text[text.index("\nResources:"):], re.M):
        sys.exit("a function of deploy/template.yaml sets its own MemorySize: teach this script")
    size = re.search(r"MemorySize:\s*(\S+)(?:\s+(\w+))?", globals_block)
    if size.group(1).isdigit():
        return int(size.group(1))
    if size.group(1) != "!Ref":
        sys.exit(f"deploy/template.yaml: MemorySize {size.group(1)}: teach this script")
    param = text[text.index(f"\n  {size.group(2)}:"):]
    return int(re.search(r"^    Default:\s*(\d+)", param, re.M).group(1))


def bootstrap_from(path: str, workdir: str) -> str:
    """The executable to run as `bootstrap`: the one in a zip of scripts/build-lambda.sh, or a
    binary."""
    target = os.path.join(workdir, "bootstrap")
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z, z.open("bootstrap") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copyfile(path, target)
    os.chmod(target, 0o755)
    return target


def sandbox_binary(given) -> str:
    candidates = [given] if given else [os.path.join(ROOT, "target/release/xdm-connect"),
                                        os.path.join(ROOT, "target/debug/xdm-connect")]
    for c in candidates:
        if c and os.path.exists(c):
            out = subprocess.run([c, "sandbox", "--help"], capture_output=True, text=True)
            if out.returncode == 0 and "--listen" in out.stdout:
                return c
    sys.exit("no xdm-connect with the sandbox: `cargo build -p xdm-app` (or pass --sandbox-bin)")


def setup_aws(moto: str, sandbox: Sandbox) -> dict:
    """The template's tables, queue, parameter and secret (values: the sandbox's), on moto."""
    create_tables(moto, TABLE_PREFIX)
    queue_url = call(moto, "sqs", "AmazonSQS.CreateQueue", {
        "QueueName": QUEUE_NAME,
        "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "false", "VisibilityTimeout": "720"},
    })["QueueUrl"]
    x = sandbox.config["x"]
    connect = sandbox.config["connect"]
    parameter = "/xdm-cost/x/dm/config"
    call(moto, "ssm", "AmazonSSM.PutParameter", {"Name": parameter, "Type": "String", "Value": json.dumps({
        "instance_id": connect["instance_id"], "contact_flow_id": connect["contact_flow_id"],
        "x_account_id": x["business"]["id"]})})
    secret_arn = call(moto, "secretsmanager", "secretsmanager.CreateSecret", {
        "Name": "xdm-cost/x-dm-credentials",
        "SecretString": json.dumps({k: x[k] for k in ("consumer_key", "consumer_secret", "access_token",
                                                      "access_token_secret")}),
    })["ARN"]
    return {"queue_url": queue_url, "parameter": parameter, "secret_arn": secret_arn}


def open_chat_contacts(sandbox: Sandbox, customer_ids) -> list:
    def find():
        contacts = sandbox.ctl("GET", "/connect/contacts")
        by_customer = {}
        for c in contacts:
            cid = (c.get("attributes") or {}).get("customerId")
            if c.get("customer_connected") and cid in customer_ids and not c.get("ended"):
                by_customer[cid] = c["contact_id"]
        return [by_customer[c] for c in customer_ids] if len(by_customer) == len(customer_ids) else None

    return wait_until("every customer's chat", 30, find)


# ------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def scaled_ms(wall_ms: float, cpu_ms: float, memory_mb: int) -> float:
    """The duration on Lambda if the CPU time runs at the function's share of a vCPU: the wait
    stays, the CPU part stretches by 1769 / memory (none at 1,769 MB and more)."""
    share = min(1.0, memory_mb / ONE_VCPU_MB)
    return wall_ms + cpu_ms * (1 / share - 1)


def function_figures(records, memory_mb: int) -> dict:
    if not records:
        return {}
    d = [r["duration_ms"] for r in records]
    return {
        "invocations": len(records),
        "duration_ms_mean": statistics.fmean(d), "duration_ms_p50": pct(d, 50), "duration_ms_p99": pct(d, 99),
        "billed_ms_mean": statistics.fmean(math.ceil(x) for x in d),
        "cpu_ms_mean": statistics.fmean(r["cpu_ms"] for r in records),
        "billed_ms_cpu_scaled_mean": statistics.fmean(
            math.ceil(scaled_ms(r["duration_ms"], r["cpu_ms"], memory_mb)) for r in records),
        "peak_rss_mb": max(r["hwm_kb"] for r in records) / 1024,
        "log_bytes_mean": statistics.fmean(r["log_bytes"] for r in records),
    }


def lambda_cost(invocations_per_msg: float, billed_ms_per_msg: float, memory_mb: int, arch: str) -> float:
    gb_s = billed_ms_per_msg / 1000 * memory_mb / 1024
    return invocations_per_msg * PRICES["lambda_request"] + gb_s * PRICES[f"lambda_gb_s_{arch}"]


def bridge_direction(direction: str, n: int, counted, timed: dict, esm: Counter, sns: dict, memory_mb: int) -> dict:
    """Per-message figures and cost per million messages of one direction of this bridge."""
    calls, ddb, upstream_ms = counted
    per = lambda v: v / n  # noqa: E731
    rru = sum(v for (op, what), v in ddb.items() if what.startswith("rru"))
    wru = sum(v for (op, what), v in ddb.items() if what.startswith("wru"))
    wru_gsi = sum(v for (op, what), v in ddb.items() if what.startswith("wru") and "/" in what)
    secrets = sum(v for k, v in calls.items() if k.startswith("secretsmanager "))
    ssm = sum(v for k, v in calls.items() if k.startswith("ssm "))
    sqs_bridge = sum(v for k, v in calls.items() if k.startswith("sqs "))
    sqs = sqs_bridge + sum(esm.values())
    invocations = sum(f["invocations"] for f in timed.values())
    billed = sum(f["invocations"] * f["billed_ms_mean"] for f in timed.values())
    billed_scaled = sum(f["invocations"] * f["billed_ms_cpu_scaled_mean"] for f in timed.values())
    http_requests = timed.get("webhook", {}).get("invocations", 0)
    fixed = (per(http_requests) * PRICES["http_api_request"] + per(wru) * PRICES["dynamodb_wru"]
             + per(rru) * PRICES["dynamodb_rru"] + per(sqs) * PRICES["sqs_fifo_request"]
             + per(sns["published"]) * PRICES["sns_publish"] + per(secrets) * PRICES["secrets_manager_call"]
             + per(ssm) * PRICES["ssm_get_parameter"])
    cost = {}
    for arch in ("x86_64", "arm64"):
        for model, ms in (("measured", billed), ("cpu_scaled", billed_scaled)):
            cost[f"{arch}_{model}"] = 1e6 * (lambda_cost(per(invocations), per(ms), memory_mb, arch) + fixed)
    return {
        "direction": direction, "messages": n,
        "per_message": {
            "lambda_invocations": per(invocations), "billed_ms": per(billed), "billed_ms_cpu_scaled": per(billed_scaled),
            "http_api_requests": per(http_requests), "dynamodb_rru": per(rru), "dynamodb_wru": per(wru),
            "dynamodb_wru_gsi": per(wru_gsi), "sqs_requests": per(sqs), "sqs_requests_bridge": per(sqs_bridge),
            "sqs_requests_event_source_mapping": per(sum(esm.values())),
            "sns_publishes": per(sns["published"]), "sns_deliveries_to_lambda": per(sns["delivered"]),
            "secrets_manager_calls": per(secrets), "ssm_calls": per(ssm),
            "log_bytes": per(sum(f["invocations"] * f["log_bytes_mean"] for f in timed.values())),
            "calls": {k: per(v) for k, v in sorted(calls.items())},
            "moto_ms_per_call": {k: upstream_ms[k] / v for k, v in sorted(calls.items()) if k in upstream_ms},
            "dynamodb_units": {f"{op} {what}": per(v) for (op, what), v in sorted(ddb.items())},
        },
        "functions": timed,
        "cost_per_million_usd": cost,
        "cost_per_million_usd_without_lambda": 1e6 * fixed,
    }


def sample_direction(direction: str) -> dict:
    s = SAMPLE[direction]
    mem = SAMPLE["memory_mb"]
    billed = s["invocations"] * math.ceil(SAMPLE["wall_ms"])
    billed_scaled = s["invocations"] * math.ceil(scaled_ms(SAMPLE["wall_ms"], SAMPLE["cpu_ms"], mem))
    fixed = (s["rest_api"] * PRICES["rest_api_request"] + s["rru"] * PRICES["dynamodb_rru"]
             + s["wru"] * PRICES["dynamodb_wru"] + s["sns_publish"] * PRICES["sns_publish"]
             + s["secrets"] * PRICES["secrets_manager_call"] + s["ssm"] * PRICES["ssm_get_parameter"])
    return {
        "direction": direction, "per_message": {**s, "billed_ms": billed, "billed_ms_cpu_scaled": billed_scaled},
        "cost_per_million_usd": {
            "x86_64_measured": 1e6 * (lambda_cost(s["invocations"], billed, mem, "x86_64") + fixed),
            "x86_64_cpu_scaled": 1e6 * (lambda_cost(s["invocations"], billed_scaled, mem, "x86_64") + fixed),
        },
        "cost_per_million_usd_without_lambda": 1e6 * fixed,
    }


def by_service(p: dict, memory_mb: int) -> dict:
    """Cost per million messages by service (x86_64 duration price, measured durations), from
    the per-message figures of this bridge (`bridge_direction`) or of the sample (`SAMPLE`)."""
    sample = "rest_api" in p
    gb_s = p["billed_ms"] / 1000 * memory_mb / 1024
    return {
        "Lambda requests": 1e6 * p.get("invocations", p.get("lambda_invocations", 0)) * PRICES["lambda_request"],
        "Lambda duration (x86_64)": 1e6 * gb_s * PRICES["lambda_gb_s_x86_64"],
        "Lambda duration (arm64)": 1e6 * gb_s * PRICES["lambda_gb_s_arm64"],
        "API Gateway": 1e6 * (p["rest_api"] * PRICES["rest_api_request"] if sample
                              else p["http_api_requests"] * PRICES["http_api_request"]),
        "DynamoDB writes": 1e6 * p.get("wru", p.get("dynamodb_wru", 0)) * PRICES["dynamodb_wru"],
        "DynamoDB reads": 1e6 * p.get("rru", p.get("dynamodb_rru", 0)) * PRICES["dynamodb_rru"],
        "SQS FIFO": 1e6 * p.get("sqs_requests", 0) * PRICES["sqs_fifo_request"],
        "SNS": 1e6 * p.get("sns_publish", p.get("sns_publishes", 0)) * PRICES["sns_publish"],
        "Secrets Manager": 1e6 * p.get("secrets", p.get("secrets_manager_calls", 0)) * PRICES["secrets_manager_call"],
        "SSM": 1e6 * p.get("ssm", p.get("ssm_calls", 0)) * PRICES["ssm_get_parameter"],
    }


def print_report(result: dict):
    print()
    print(f"== lambda-cost {result['date']}: {result['messages']} messages each way, {result['customers']} "
          f"customers, memory {result['memory_mb']} MB, load average {' '.join(result['load']['start'])} at the "
          f"start, {' '.join(result['load']['end'])} at the end")
    print(f"   bootstrap {result['bootstrap']}; reorder window: {result['reorder_window']}")
    for c in result["cold_starts"]:
        print(f"   cold start {c['function']:9} init {c['init_ms']:6.1f} ms + first invocation "
              f"{c['duration_ms']:6.1f} ms, peak RSS {c['peak_rss_mb']:.1f} MB")
    for key in ("inbound", "outbound"):
        d = result["bridge"][key]
        p = d["per_message"]
        print(f"\n-- {key} (this bridge), per message:")
        for name, f in d["functions"].items():
            print(f"   {name:9} {f['invocations']} invocations: duration mean {f['duration_ms_mean']:.1f} / p50 "
                  f"{f['duration_ms_p50']:.1f} / p99 {f['duration_ms_p99']:.1f} ms, billed mean {f['billed_ms_mean']:.1f} ms, "
                  f"CPU {f['cpu_ms_mean']:.2f} ms, CPU-scaled billed {f['billed_ms_cpu_scaled_mean']:.1f} ms, "
                  f"peak RSS {f['peak_rss_mb']:.1f} MB, log {f['log_bytes_mean']:.0f} B")
        print(f"   Lambda invocations {p['lambda_invocations']:.2f}, billed {p['billed_ms']:.1f} ms "
              f"(CPU-scaled {p['billed_ms_cpu_scaled']:.1f} ms), HTTP API requests {p['http_api_requests']:.2f}")
        print(f"   DynamoDB {p['dynamodb_rru']:.2f} RRU, {p['dynamodb_wru']:.2f} WRU (of which GSI {p['dynamodb_wru_gsi']:.2f}); "
              f"SQS {p['sqs_requests']:.2f} (bridge {p['sqs_requests_bridge']:.2f}, event source mapping "
              f"{p['sqs_requests_event_source_mapping']:.2f}); SNS publishes {p['sns_publishes']:.2f}, to Lambda "
              f"{p['sns_deliveries_to_lambda']:.2f}; Secrets Manager {p['secrets_manager_calls']:.3f}, SSM {p['ssm_calls']:.3f}; "
              f"log {p['log_bytes']:.0f} B")
        print("   calls: " + ", ".join(f"{k} {v:.2f}" for k, v in p["calls"].items()))
        print("   moto's answer time per call (count pass): "
              + ", ".join(f"{k} {v:.1f} ms" for k, v in p["moto_ms_per_call"].items()))
        print("   DynamoDB units: " + ", ".join(f"{k} {v:.2f}" for k, v in p["dynamodb_units"].items()))
        print("   cost per million: " + ", ".join(f"{k} ${v:.2f}" for k, v in d["cost_per_million_usd"].items())
              + f" (of which not Lambda ${d['cost_per_million_usd_without_lambda']:.2f})")
    for key in ("inbound", "outbound"):
        d = result["sample"][key]
        print(f"-- {key} (the AWS sample's design): " + ", ".join(
            f"{k} ${v:.2f}" for k, v in d["cost_per_million_usd"].items())
            + f" (of which not Lambda ${d['cost_per_million_usd_without_lambda']:.2f})")
    print("-- cost per million by service (x86_64 unless arm64; measured durations): "
          "bridge in | bridge out | sample in | sample out")
    rows = [by_service(result["bridge"][k]["per_message"], result["memory_mb"]) for k in ("inbound", "outbound")]
    rows += [by_service(result["sample"][k]["per_message"], SAMPLE["memory_mb"]) for k in ("inbound", "outbound")]
    for name in rows[0]:
        print(f"   {name:25} " + " | ".join(f"${r[name]:6.2f}" for r in rows))
    s = result["sweep"]
    if s:
        print(f"-- idle sweep: duration mean {s['duration_ms_mean']:.1f} ms, CPU {s['cpu_ms_mean']:.2f} ms; "
              f"per sweep: " + ", ".join(f"{k} {v:.2f}" for k, v in result["sweep_calls"].items()))


# ------------------------------------------------------------------------------------------

def run_pass(label, args, bootstrap, aws_endpoint, moto, setup, sandbox, sns, customers, memory_mb, workdir,
             tally, contacts):
    """Warm-up, N DMs in, N replies out, sweeps. Returns the deployment, the phase tallies, the
    SNS counts and the contacts (opened by the first pass)."""
    d = Deployment(label, args, bootstrap, aws_endpoint, moto, setup, sandbox, sns, customers, memory_mb, workdir)
    marks = {}

    def mark():
        return (tally.snapshot() if tally else (Counter(), Counter(), Counter()), Counter(d.esm_requests),
                sns.received, filtered_out(sandbox))

    d.cold_starts()
    if contacts is None:
        d.inbound("open", len(customers.ids))
        contacts = open_chat_contacts(sandbox, customers.ids)
        for c in contacts:
            sandbox.ctl("POST", f"/connect/contacts/{c}/accept", {"agent_name": "Cost Agent"})
        time.sleep(0.5)
        while not sns.events.empty():  # what accepting streamed (participant events)
            d.deliver_sns(0.1)
    d.inbound("warm-in", len(customers.ids))
    d.outbound("warm-out", len(contacts), contacts)
    sent_before = sandbox.ctl("GET", "/stats")
    for phase, run in (("inbound", lambda: d.inbound("inbound", args.messages)),
                       ("outbound", lambda: d.outbound("outbound", args.messages, contacts))):
        start = mark()
        run()
        time.sleep(0.3)
        while not sns.events.empty():
            d.deliver_sns(0.1)
        end = mark()
        marks[phase] = {"counted": diff(end[0], start[0]),
                        "esm": Counter({k: v - start[1].get(k, 0) for k, v in end[1].items()}),
                        "sns": {"delivered": end[2] - start[2],
                                "published": (end[2] - start[2]) + (end[3] - start[3])}}
    stats = sandbox.ctl("GET", "/stats")
    sent = {"connect_send_message": stats["connect"]["send_message_calls"] - sent_before["connect"]["send_message_calls"],
            "x_create_dm": stats["x"]["create_dm_calls"] - sent_before["x"]["create_dm_calls"]}
    if sent["connect_send_message"] != args.messages or sent["x_create_dm"] != args.messages:
        sys.exit(f"{label}: not every message was delivered exactly once: {sent}")
    start = mark()
    d.sweeps("sweep", 5)
    end = mark()
    marks["sweep"] = {"counted": diff(end[0], start[0])}
    d.stop()
    return d, marks, contacts, sent


def filtered_out(sandbox: Sandbox) -> int:
    subs = sandbox.ctl("GET", "/sns/subscriptions")
    return sum(s.get("filtered_out", 0) for s in subs if s["endpoint"].endswith("/sns"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=500, help="DMs each way (default 500)")
    ap.add_argument("--customers", type=int, default=10, help="customers, each with an open chat (default 10)")
    ap.add_argument("--bootstrap", default=os.path.join(ROOT, "target/lambda/xdm-connect.zip"),
                    help="the zip of scripts/build-lambda.sh or a binary (default target/lambda/xdm-connect.zip)")
    ap.add_argument("--sandbox-bin", help="an xdm-connect built with the sandbox (default: found in target/)")
    ap.add_argument("--reorder-window-ms", type=int,
                    help="XDM_REORDER_WINDOW_MS for the functions (default: unset, as in the template)")
    ap.add_argument("--memory-mb", type=int,
                    help="the functions' memory in MB (default: the template's default, FunctionMemoryMB)")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--report", metavar="JSON", help="print the report of a run saved with --json, and stop")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            saved = json.load(f)
        if isinstance(saved.get("load"), list):  # files written before the load had two readings
            saved["load"] = {"start": ["?"], "end": saved["load"]}
        print_report(saved)
        return

    memory_mb = args.memory_mb or template_memory_mb()
    load_at_start = open("/proc/loadavg").read().split()[:3]
    workdir = tempfile.mkdtemp(prefix="xdm-lambda-cost-")
    bootstrap = bootstrap_from(args.bootstrap, workdir)
    sandbox_bin = sandbox_binary(args.sandbox_bin)
    moto_proc, moto = start_moto()
    sandbox = Sandbox(sandbox_bin, workdir)
    try:
        setup = setup_aws(moto, sandbox)
        customers = Customers(sandbox, args.customers)
        sns = SnsEndpoint()
        sub = sandbox.ctl("POST", "/sns/subscribe", {"endpoint": sns.url, "filter_policy": ECHO_FILTER_POLICY})
        wait_until("the SNS subscription's confirmation", 10, lambda: any(
            s["subscription_arn"] == sub["subscription_arn"] and s["confirmed"]
            for s in sandbox.ctl("GET", "/sns/subscriptions")))
        proxy = CountingProxy(moto, DynamoAccountant(moto, TABLE_PREFIX))

        print(f"pass 1 (count): calls through the counting proxy, {args.messages} messages each way …", flush=True)
        _, counted, contacts, _ = run_pass("count", args, bootstrap, proxy.url, moto, setup, sandbox, sns,
                                           customers, memory_mb, workdir, proxy.tally, None)
        print(f"pass 2 (time): straight to moto, {args.messages} messages each way …", flush=True)
        timed, _, _, delivered = run_pass("time", args, bootstrap, moto, moto, setup, sandbox, sns,
                                                    customers, memory_mb, workdir, None, contacts)
        fn = timed.functions
        result = {
            "date": DATE, "messages": args.messages, "customers": args.customers, "memory_mb": memory_mb,
            "load": {"start": load_at_start, "end": open("/proc/loadavg").read().split()[:3]}, "bootstrap": args.bootstrap,
            "reorder_window": (f"{args.reorder_window_ms} ms" if args.reorder_window_ms is not None
                               else "unset (250 ms, the default)"),
            "delivered": delivered,
            "cold_starts": [{"function": name, "init_ms": f.records[0]["init_ms"],
                             "duration_ms": f.records[0]["duration_ms"], "peak_rss_mb": f.records[0]["hwm_kb"] / 1024}
                            for name, f in fn.items()],
            "bridge": {
                "inbound": bridge_direction(
                    "inbound", args.messages, counted["inbound"]["counted"],
                    {k: function_figures(fn[k].of_phase("inbound"), memory_mb) for k in ("webhook", "worker")},
                    counted["inbound"]["esm"], counted["inbound"]["sns"], memory_mb),
                "outbound": bridge_direction(
                    "outbound", args.messages, counted["outbound"]["counted"],
                    {"outbound": function_figures(fn["outbound"].of_phase("outbound"), memory_mb)},
                    Counter(), counted["outbound"]["sns"], memory_mb),
            },
            "sample": {"inbound": sample_direction("inbound"), "outbound": sample_direction("outbound")},
            "sweep": function_figures(fn["sweeper"].of_phase("sweep"), memory_mb),
            "sweep_calls": {k: v / 5 for k, v in counted["sweep"]["counted"][0].items()},
            "sweep_units": {f"{op} {what}": v / 5 for (op, what), v in counted["sweep"]["counted"][1].items()},
            "prices": PRICES,
            "invocations": {name: f.records for name, f in fn.items()},
        }
        print_report(result)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1, default=str)
            print(f"\nwritten to {args.json}")
    finally:
        for proc in SPAWNED:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sandbox.stop()
        moto_proc.kill()
        moto_proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
