"""Ports for the servers the tests start: the system's free ports, never fixed ones."""

from __future__ import annotations

import socket


def free_port(preferred: int | None = None) -> int:
    """A port nothing listens on: `preferred` when it is free, else one the system picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port")
