#!/usr/bin/env python3
"""Cold start of the Lambda `bootstrap`: process start → answer to one X CRC event.

Emulates the Lambda Runtime API on loopback (GET /2018-06-01/runtime/invocation/next hands out
one API Gateway HTTP API event; POST …/response records the answer; the next poll waits until
the process is killed), starts `bootstrap` with the environment Lambda gives it, and prints the
time from spawn to the response, over several runs.

    ./scripts/build-lambda.sh                       # target/lambda/bootstrap
    python3 scripts/lambda-cold-start.py [--runs 10] [--bootstrap PATH] [--dynamodb]

With --dynamodb the store is `dynamodb:` on a local moto (from ./.venv, see scripts/venv.sh), so
the start includes the table checks the real function does; otherwise a temporary SQLite file.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"
TOKEN = "M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0"
EXPECTED = '{"response_token":"sha256=rsbyDKfEGS3AsSuLiO7cJH5Dt2MnHRbNFK4WwzavGUs="}'

EVENT = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/webhooks", "rawQueryString": f"crc_token={TOKEN}",
    "headers": {"user-agent": "X"},
    "requestContext": {"http": {"method": "GET", "path": "/webhooks"}, "stage": "$default"},
    "isBase64Encoded": False,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.served = False
        self.answered = threading.Event()
        self.answer = None
        self.answered_at = None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/invocation/next"):
            self.send_error(404)
            return
        if self.server.served:
            self.server.answered.wait(60)  # hang like an idle Lambda until killed
            time.sleep(60)
            return
        self.server.served = True
        body = json.dumps(EVENT).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:xdm-webhook")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        payload = self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if "/response" in self.path or "/error" in self.path:
            self.server.answer = (self.path, payload)
            self.server.answered_at = time.perf_counter()
            self.server.answered.set()


def start_moto():
    port = free_port()
    python = os.path.join(ROOT, ".venv/bin/python")
    script = os.path.join(ROOT, "crates/testkit/serialized_moto.py")
    proc = subprocess.Popen([python, script, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("moto did not start")


def create_tables(endpoint: str, prefix: str):
    """Uses the binary's own table creation through a tiny helper run of the store tests' logic:
    simplest is boto3 from moto's venv, with the schema of docs/aws-tables.md."""
    code = f"""
import boto3
c = boto3.client('dynamodb', endpoint_url='{endpoint}', region_name='us-east-1',
                 aws_access_key_id='test', aws_secret_access_key='test')
def t(name, attrs, key, gsis):
    c.create_table(TableName='{prefix}'+name, BillingMode='PAY_PER_REQUEST',
        AttributeDefinitions=[{{'AttributeName':a,'AttributeType':ty}} for a,ty in attrs],
        KeySchema=[{{'AttributeName':key,'KeyType':'HASH'}}],
        GlobalSecondaryIndexes=[{{'IndexName':n,'KeySchema':[{{'AttributeName':h,'KeyType':'HASH'}}]+([{{'AttributeName':r,'KeyType':'RANGE'}}] if r else []),
            'Projection':{{'ProjectionType':p}}}} for n,h,r,p in gsis])
    c.update_time_to_live(TableName='{prefix}'+name, TimeToLiveSpecification={{'Enabled':True,'AttributeName':'expires_at'}})
t('sessions', [('pk','S'),('ended_group','S'),('updated_at_ms','N')], 'pk', [('ended_by_age','ended_group','updated_at_ms','KEYS_ONLY')])
t('profiles', [('user_id','S'),('expiry_group','S'),('expires_at_ms','N')], 'user_id', [('by_expiry','expiry_group','expires_at_ms','KEYS_ONLY')])
t('jobs', [('pk','S'),('queue_state','S'),('accepted_key','S'),('finished_queue','S'),('updated_at_ms','N')], 'pk',
  [('by_state','queue_state','accepted_key','KEYS_ONLY'),('finished_by_age','finished_queue','updated_at_ms','KEYS_ONLY')])
t('lanes', [('pk','S'),('open_queue','S')], 'pk', [('open_lanes','open_queue',None,'ALL')])
"""
    subprocess.run([os.path.join(ROOT, ".venv/bin/python"), "-c", code], check=True)


def one_run(bootstrap: str, env_extra: dict) -> float:
    runtime = Runtime()
    threading.Thread(target=runtime.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "xdm-webhook",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/xdm-webhook",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "XDM_X_CONSUMER_SECRET": SECRET,
        "RUST_LOG": "warn",
    }
    env.update(env_extra)
    start = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = runtime.answered.wait(30)
    proc.kill()
    _, err = proc.communicate()
    runtime.shutdown()
    if not ok:
        sys.exit(f"no answer from bootstrap: {err.decode(errors='replace')[-2000:]}")
    path, payload = runtime.answer
    answer = json.loads(payload)
    if "/response" not in path or answer.get("statusCode") != 200 or answer.get("body") != EXPECTED:
        sys.exit(f"unexpected answer {path}: {payload[:500]!r}")
    return (runtime.answered_at - start) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--bootstrap", default=os.path.join(ROOT, "target/lambda/bootstrap"))
    ap.add_argument("--dynamodb", action="store_true")
    args = ap.parse_args()
    extra = {}
    moto = None
    tmp = tempfile.TemporaryDirectory()
    if args.dynamodb:
        moto, endpoint = start_moto()
        prefix = "coldstart-"
        create_tables(endpoint, prefix)
        extra = {"XDM_STORE": f"dynamodb:{prefix}", "AWS_ENDPOINT_URL": endpoint}
    else:
        extra = {"XDM_STORE": f"sqlite:{tmp.name}/cold.db"}
    try:
        times = [one_run(args.bootstrap, extra) for _ in range(args.runs)]
    finally:
        if moto:
            moto.kill()
    times.sort()
    print(f"bootstrap {args.bootstrap} ({os.path.getsize(args.bootstrap)/1e6:.1f} MB), store {extra['XDM_STORE']}")
    print(f"cold start to CRC answer over {len(times)} runs: median {statistics.median(times):.1f} ms, "
          f"min {times[0]:.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
