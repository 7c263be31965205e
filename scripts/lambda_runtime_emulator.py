"""The AWS Lambda Runtime API on loopback, so that the `bootstrap` runs outside AWS as it runs in
a Lambda execution environment.

`GET /2018-06-01/runtime/invocation/next` hands out the next event given to `invoke()` (with the
request id, deadline and function ARN headers Lambda sends) and otherwise waits, like an idle
function; `POST …/invocation/<id>/response` (or `/error`) is the answer. `invoke()` blocks until
that answer and returns an `Invocation`: the payload, and the time from handing the event out to
the answer — what Lambda bills as the invocation's duration. `probe`, if given, is called at both
moments (e.g. to read the process's CPU time), so that a caller can measure what happens inside
the invocation only.

    runtime = RuntimeApi()
    env = lambda_environment(runtime.address, "xdm-webhook", 512)
    proc = subprocess.Popen([bootstrap], env={**env, ...})
    inv = runtime.invoke(event, timeout_s=10)

Used by scripts/lambda-cold-start.py and scripts/lambda-cost.py. Standard library only.
"""

import json
import queue
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime/"
ACCOUNT = "123456789012"


class Invocation:
    """One event and its answer."""

    def __init__(self, event, deadline_ms: int, function_arn: str):
        self.request_id = str(uuid.uuid4())
        self.event = event
        self.deadline_ms = deadline_ms
        self.function_arn = function_arn
        self.handed_at = None  # time.perf_counter() when the event was handed out
        self.answered_at = None  # … when the answer arrived
        self.probe_handed = None
        self.probe_answered = None
        self.error = False  # answered on /error
        self.payload = b""
        self.done = threading.Event()

    @property
    def duration_ms(self) -> float:
        return (self.answered_at - self.handed_at) * 1000

    def json(self):
        return json.loads(self.payload) if self.payload else None


class RuntimeApi:
    """A Runtime API endpoint for one execution environment (one bootstrap process)."""

    def __init__(self, function_name: str = "xdm-connect", probe=None):
        self.function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.probe = probe
        self.init_error = None
        self.first_poll_at = None  # perf_counter() of the first /next: the end of the INIT phase
        self._pending = queue.Queue()
        self._by_id = {}
        self._closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        """What AWS_LAMBDA_RUNTIME_API holds: host:port."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def invoke(self, event, timeout_s: float) -> Invocation:
        """Hands `event` to the function and waits for its answer; `timeout_s` is the function's
        timeout (its deadline header) and how long this waits."""
        inv = Invocation(event, int(time.time() * 1000 + timeout_s * 1000), self.function_arn)
        self._by_id[inv.request_id] = inv
        self._pending.put(inv)
        if not inv.done.wait(timeout_s + 5):
            raise TimeoutError(f"no answer from the function within {timeout_s} s"
                               + (f" (init error: {self.init_error})" if self.init_error else ""))
        return inv

    def close(self):
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def _probe(self):
        return self.probe() if self.probe else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A killed bootstrap resets its connection: not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # No Nagle: an answer written in two parts would otherwise wait for the client's delayed
        # ACK (40 ms on Linux), and that wait would count as the invocation's duration.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def do_GET(self):
        api: RuntimeApi = self.server.api
        if self.path != PREFIX + "invocation/next":
            self._reply(404, b"")
            return
        if api.first_poll_at is None:
            api.first_poll_at = time.perf_counter()
        while True:  # an idle function waits here until there is an event
            if api._closed.is_set():
                self.close_connection = True
                return
            try:
                inv = api._pending.get(timeout=0.5)
                break
            except queue.Empty:
                continue
        body = json.dumps(inv.event).encode()
        head = (f"HTTP/1.1 200 OK\r\n"
                f"Lambda-Runtime-Aws-Request-Id: {inv.request_id}\r\n"
                f"Lambda-Runtime-Deadline-Ms: {inv.deadline_ms}\r\n"
                f"Lambda-Runtime-Invoked-Function-Arn: {inv.function_arn}\r\n"
                "Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        inv.probe_handed = api._probe()
        inv.handed_at = time.perf_counter()
        self.wfile.write(head.encode() + body)  # one write: headers and event in one segment

    def do_POST(self):
        api: RuntimeApi = self.server.api
        payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answered_at = time.perf_counter()
        rest = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else ""
        if rest == "init/error":
            api.init_error = payload.decode(errors="replace")
            self._reply(202, b"")
            return
        parts = rest.split("/")  # invocation/<id>/response|error
        inv = api._by_id.get(parts[1]) if len(parts) == 3 and parts[0] == "invocation" else None
        if inv is None or parts[2] not in ("response", "error"):
            self._reply(404, b"")
            return
        inv.answered_at = answered_at
        inv.probe_answered = api._probe()
        inv.error = parts[2] == "error"
        inv.payload = payload
        self._reply(202, b"")
        del api._by_id[inv.request_id]
        inv.done.set()

    def _reply(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def lambda_environment(runtime_address: str, function_name: str, memory_mb: int) -> dict:
    """The variables Lambda sets for a provided.al2023 function (besides the credentials)."""
    return {
        "AWS_LAMBDA_RUNTIME_API": runtime_address,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "_HANDLER": "bootstrap",
    }
