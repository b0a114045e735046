"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the
first query of every request by running `SELECT 1`: one more round trip per
request, as much as a stored invoice read's own query. Here an idle
connection is taken as usable when its socket has nothing to read: a server
that ended it (a restart, `pg_terminate_backend`, an idle timeout) has sent
its last message or closed the socket, which makes it readable. Then, or
whenever the connection is not idle, Django's own `SELECT 1` decides.

Its operations also log a prepared statement's text (invoices/api/fast_reads.py
runs its statements prepared, which psycopg sends by name only).

A peer that vanished without a word (a cable pulled) passes this check, as
it would pass the `SELECT 1` only after a network timeout: the query fails,
DatabaseUnavailableMiddleware answers 503, and Django drops the connection
at the end of that request.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.operations import DatabaseOperations as BaseOperations
from psycopg import pq


class DatabaseOperations(BaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """The statement as run, for the debug log and query counting. A server-binding
        cursor runs a prepared statement by its name and keeps no text: then the
        statement with its parameters composed on the client."""
        found = super().last_executed_query(cursor, sql, params)
        if found is None and sql is not None and not isinstance(cursor, psycopg.ClientCursor):
            try:
                return self.compose_sql(sql, params)
            except psycopg.errors.DataError:
                return None
        return found


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        poll = getattr(select, "poll", None)
        if poll is None:  # no poll(2) on this platform
            return super().is_usable()
        try:
            poller = poll()  # unlike select(2), any descriptor number
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            readable = bool(poller.poll(0))
        except (OSError, ValueError):
            return super().is_usable()
        return super().is_usable() if readable else True
