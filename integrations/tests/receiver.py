"""A tiny webhook receiver on 127.0.0.1 for tests: records each POST and answers from a script of replies."""

import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from marketplace.tests.loopback import LoopbackServer


class Receiver(LoopbackServer):
    def __init__(self):
        self.requests: list[tuple[dict[str, str], bytes, str]] = []
        self.replies: deque = deque()  # (status, headers, body); 200 when empty
        self.delay = 0.0  # seconds to wait before answering: a slow lender endpoint
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, and no Nagle delay on the small replies, as a lender's real endpoint would be set up
            # (without TCP_NODELAY every kept-alive reply waits for the client's delayed ACK, ~40 ms).
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, self.path))
                time.sleep(receiver.delay)
                status, headers, reply = receiver.replies.popleft() if receiver.replies else (200, {}, b"ok")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._listen(ThreadingHTTPServer, Handler)
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def reply(self, status: int, headers: dict | None = None, body: bytes = b""):
        self.replies.append((status, headers or {}, body))
