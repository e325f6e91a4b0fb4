"""A local HTTP server standing in for a provider's API (Twilio's Messages API, SendGrid's mail send): it
records each request (method, path, headers, body) and answers what the test set, so the real backends are
driven over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 201
    body: dict | None = None


@dataclass
class FakeProvider:
    requests: list[Seen] = field(default_factory=list)
    answer: Answer = field(default_factory=Answer)

    def __enter__(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                provider.requests.append(
                    Seen(
                        "POST",
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                payload = b"" if provider.answer.body is None else json.dumps(provider.answer.body).encode()
                self.send_response(provider.answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet: pytest shows what matters
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def twilio_message(sid: str = "SM0123456789abcdef0123456789abcdef", status: str = "queued", **extra) -> dict:
    """Twilio's 201 answer to a Messages POST (the fields we read, and a few we do not)."""
    return {
        "account_sid": "AC00000000000000000000000000000000",
        "api_version": "2010-04-01",
        "body": extra.get("body", ""),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": "+15005550006",
        "num_segments": "1",
        "sid": sid,
        "status": status,
        "to": extra.get("to", ""),
        "uri": f"/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/{sid}.json",
    }


def twilio_error(code: int, message: str, status: int = 400) -> dict:
    """Twilio's error body (REST API errors)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
