#!/usr/bin/env python3
"""Cold start of the Lambda `bootstrap`: process start → answer to one X CRC event.

Emulates the Lambda Runtime API on loopback (scripts/lambda_runtime_emulator.py: GET
/2018-06-01/runtime/invocation/next hands out one API Gateway HTTP API event; POST …/response
records the answer; the next poll waits until the process is killed), starts `bootstrap` with the
environment Lambda gives it, and prints the time from spawn to the response, over several runs.

    ./scripts/build-lambda.sh                       # target/lambda/bootstrap
    python3 scripts/lambda-cold-start.py [--runs 10] [--bootstrap PATH] [--dynamodb]

With --dynamodb the store is `dynamodb:` on a local moto (scripts/local_aws.py: moto from
./.venv, see scripts/venv.sh, and the five tables), so the start includes the table checks the
real function does; otherwise a temporary SQLite file.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no scripts/__pycache__ from the modules below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lambda_runtime_emulator import RuntimeApi, lambda_environment  # noqa: E402
from local_aws import ROOT, create_tables, start_moto  # noqa: E402

SECRET = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"
TOKEN = "M2RkODJkZmMtYjlkYi00NmQ4LTk0MGUtM2JjYzkwM2Q4MjQ0"
EXPECTED = '{"response_token":"sha256=rsbyDKfEGS3AsSuLiO7cJH5Dt2MnHRbNFK4WwzavGUs="}'

EVENT = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/webhooks", "rawQueryString": f"crc_token={TOKEN}",
    "headers": {"user-agent": "X"},
    "requestContext": {"http": {"method": "GET", "path": "/webhooks"}, "stage": "$default"},
    "isBase64Encoded": False,
}


def one_run(bootstrap: str, env_extra: dict) -> float:
    runtime = RuntimeApi("xdm-webhook")
    env = {
        "PATH": os.environ.get("PATH", ""),
        **lambda_environment(runtime.address, "xdm-webhook", 256),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "XDM_X_CONSUMER_SECRET": SECRET,
        "RUST_LOG": "warn",
    }
    env.update(env_extra)
    start = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        inv = runtime.invoke(EVENT, timeout_s=30)
    except TimeoutError:
        inv = None
    proc.kill()
    _, err = proc.communicate()
    runtime.close()
    if inv is None:
        sys.exit(f"no answer from bootstrap: {err.decode(errors='replace')[-2000:]}")
    answer = inv.json()
    if inv.error or answer.get("statusCode") != 200 or answer.get("body") != EXPECTED:
        sys.exit(f"unexpected answer: {inv.payload[:500]!r}")
    return (inv.answered_at - start) * 1000


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
