"""The local AWS the Lambda scripts run the bootstrap against: moto on loopback and the bridge's
five DynamoDB tables.

Python's standard library only, so the scripts run with any python3; moto itself comes from
./.venv (scripts/venv.sh). moto checks no signatures: every call here carries a placeholder
SigV4 header that names the service, which is how moto's dispatcher routes a request.

    from local_aws import start_moto, call, create_tables
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, ".venv/bin/python")
REGION = "us-east-1"

# The five tables of docs/aws-tables.md: key attribute, attribute definitions, GSIs as
# (name, hash key, range key or None, projection). The cost script reads the same description
# to work out index writes.
TABLES = {
    "sessions": {
        "key": "pk",
        "attrs": [("pk", "S"), ("ended_group", "S"), ("updated_at_ms", "N")],
        "gsis": [("ended_by_age", "ended_group", "updated_at_ms", "KEYS_ONLY")],
    },
    "profiles": {
        "key": "user_id",
        "attrs": [("user_id", "S"), ("expiry_group", "S"), ("expires_at_ms", "N")],
        "gsis": [("by_expiry", "expiry_group", "expires_at_ms", "KEYS_ONLY")],
    },
    "jobs": {
        "key": "pk",
        "attrs": [("pk", "S"), ("queue_state", "S"), ("accepted_key", "S"), ("finished_queue", "S"),
                  ("updated_at_ms", "N")],
        "gsis": [("by_state", "queue_state", "accepted_key", "KEYS_ONLY"),
                 ("finished_by_age", "finished_queue", "updated_at_ms", "KEYS_ONLY")],
    },
    "lanes": {
        "key": "pk",
        "attrs": [("pk", "S"), ("open_queue", "S")],
        "gsis": [("open_lanes", "open_queue", None, "ALL")],
    },
    "records": {
        "key": "key",
        "attrs": [("key", "S")],
        "gsis": [],
    },
}

# Service name in the credential scope -> JSON protocol content type.
_CONTENT_TYPE = {
    "dynamodb": "application/x-amz-json-1.0",
    "sqs": "application/x-amz-json-1.0",
    "secretsmanager": "application/x-amz-json-1.1",
    "ssm": "application/x-amz-json-1.1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    """moto behind crates/testkit/serialized_moto.py (one request at a time, as the tests run it)
    on a free loopback port: (process, endpoint URL)."""
    if not os.path.exists(VENV_PYTHON):
        sys.exit("no ./.venv: run ./scripts/venv.sh first (it installs moto)")
    port = free_port()
    script = os.path.join(ROOT, "crates/testkit/serialized_moto.py")
    proc = subprocess.Popen([VENV_PYTHON, script, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("moto did not start")


class AwsError(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


def call(endpoint: str, service: str, target: str, payload: dict) -> dict:
    """One JSON-protocol call (`X-Amz-Target: target`) to moto, unsigned."""
    req = urllib.request.Request(
        endpoint.rstrip("/") + "/", data=json.dumps(payload).encode(), method="POST",
        headers={
            "content-type": _CONTENT_TYPE[service],
            "x-amz-target": target,
            "authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, "
                             "SignedHeaders=host, Signature=0",
        })
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
    except urllib.error.HTTPError as e:
        raise AwsError(e.code, e.read()) from None
    return json.loads(text) if text else {}


def create_tables(endpoint: str, prefix: str):
    """The five tables, on demand, TTL on `expires_at`, exactly as docs/aws-tables.md."""
    for name, spec in TABLES.items():
        table = {
            "TableName": prefix + name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in spec["attrs"]],
            "KeySchema": [{"AttributeName": spec["key"], "KeyType": "HASH"}],
        }
        if spec["gsis"]:
            table["GlobalSecondaryIndexes"] = [{
                "IndexName": index,
                "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}]
                + ([{"AttributeName": r, "KeyType": "RANGE"}] if r else []),
                "Projection": {"ProjectionType": projection},
            } for index, h, r, projection in spec["gsis"]]
        call(endpoint, "dynamodb", "DynamoDB_20120810.CreateTable", table)
        call(endpoint, "dynamodb", "DynamoDB_20120810.UpdateTimeToLive", {
            "TableName": prefix + name,
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"},
        })
