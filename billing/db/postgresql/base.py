"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the
first query of every request by running `SELECT 1`: one more round trip per
request, as much as a stored invoice read's own query. Here an idle
connection is taken as usable when its socket has nothing to read: a server
that ended it (a restart, `pg_terminate_backend`, an idle timeout) has sent
its last message or closed the socket, which makes it readable. Then, or
whenever the connection is not idle, Django's own `SELECT 1` decides.

A peer that vanished without a word (a cable pulled) passes this check, as
it would pass the `SELECT 1` only after a network timeout: the query fails,
DatabaseUnavailableMiddleware answers 503, and Django drops the connection
at the end of that request.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return super().is_usable() if readable else True
