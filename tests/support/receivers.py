"""Real servers for delivery tests, on free ports: an SMTP server (aiosmtpd) and an
HTTP webhook receiver that records what it gets and de-duplicates by `webhook-id`."""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        self.messages.append(
            email.message_from_bytes(envelope.original_content or envelope.content)
        )
        return "250 Message accepted for delivery"


class SMTPServer:
    """`with SMTPServer() as smtp:` a real SMTP server on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """`with WebhookReceiver() as receiver:` an HTTP server on 127.0.0.1:<free port>.

    `status` (and `location`) set what it answers; `requests` is everything it got,
    `unique_ids` the distinct `webhook-id`s (the receiver-side backstop).
    """

    status: int = 200
    location: str = ""
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                payload = b'{"received": true}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    @property
    def unique_ids(self) -> set[str]:
        return {r.headers["webhook-id"] for r in self.requests}

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
