"""moto's DynamoDB emulator (moto_server), answering one request at a time.

moto runs each request on its own thread, and its DynamoDB transactions are not isolated: a
cancelled TransactWriteItems restores a copy of the whole table taken when it began, undoing
what concurrent requests wrote in between, and conditional writes check and write in separate
steps. DynamoDB itself never lets concurrent writes interleave like that. Running moto's own
WSGI application behind one lock gives the isolation the store relies on, while clients still
connect and send concurrently (see moto.rs). Same arguments as moto_server: -H HOST -p PORT.
"""

import argparse
import socket
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class Handler(MotoRequestHandler):
    """No line per request in the log (errors are still logged), no Nagle delay."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args, **kwargs) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    moto = DomainDispatcherApplication(create_backend_app)
    # DynamoDB calls go straight to moto's DynamoDB app: the dispatcher would otherwise work out
    # the service of every request again (file system scans included).
    dynamodb = create_backend_app("dynamodb")
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        app = dynamodb if target.startswith("DynamoDB_") else moto
        with lock:
            body = app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    run_simple(
        args.host,
        args.port,
        one_at_a_time,
        threaded=True,
        request_handler=Handler,
    )


if __name__ == "__main__":
    main()
