"""Real servers for delivery tests, on free ports: an SMTP server (aiosmtpd) and an
HTTP webhook receiver that records what it gets and de-duplicates by `webhook-id`.

Both tell when something arrives (`wait_for`), and the receiver can hold the first
request unanswered (`hold_first`) until `release()`: a sender killed meanwhile dies
inside its POST."""

from __future__ import annotations

import asyncio
import email
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


def _wait(condition: threading.Condition, predicate, timeout: float) -> None:
    with condition:
        if not condition.wait_for(predicate, timeout=timeout):
            raise TimeoutError(f"nothing arrived within {timeout} s")


class _Collect:
    def __init__(self, hold_first: bool) -> None:
        self.messages: list[Message] = []
        self.envelopes: list = []
        self.arrived = threading.Condition()
        self.hold_first = hold_first
        self.released = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.arrived:
            self.envelopes.append(envelope)
            self.messages.append(
                email.message_from_bytes(envelope.original_content or envelope.content)
            )
            first = len(self.messages) == 1
            self.arrived.notify_all()
        if first and self.hold_first:
            # Waits in a thread, so the server goes on serving other sessions.
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 120)
        return "250 Message accepted for delivery"


class SMTPServer:
    """`with SMTPServer() as smtp:` a real SMTP server on 127.0.0.1:<free port>.

    With `hold_first`, the first message is recorded, then not acknowledged until
    `release()`."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.handler = _Collect(hold_first)
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Return once `count` messages have arrived (TimeoutError after `timeout` s)."""
        _wait(self.handler.arrived, lambda: len(self.messages) >= count, timeout)

    def release(self) -> None:
        """Let the held first message be acknowledged."""
        self.handler.released.set()

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
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
    `unique_ids` the distinct `webhook-id`s (the receiver-side backstop). With
    `hold_first`, the first request is recorded, then left unanswered until `release()`.
    """

    status: int = 200
    location: str = ""
    requests: list[Received] = field(default_factory=list)
    hold_first: bool = False

    def __post_init__(self) -> None:
        receiver = self
        self.arrived = threading.Condition()
        self.released = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.arrived:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    first = len(receiver.requests) == 1
                    receiver.arrived.notify_all()
                if first and receiver.hold_first:
                    receiver.released.wait(timeout=120)
                try:
                    self._answer()
                except OSError:
                    pass  # the sender is gone (killed while it waited)

            def _answer(self):
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

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Return once `count` requests have arrived (TimeoutError after `timeout` s)."""
        _wait(self.arrived, lambda: len(self.requests) >= count, timeout)

    def release(self) -> None:
        """Let the held first request be answered."""
        self.released.set()

    @property
    def unique_ids(self) -> set[str]:
        return {r.headers["webhook-id"] for r in self.requests}

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
