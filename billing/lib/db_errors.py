"""A lost database is a 503 the client can retry, never a 500 with a stack trace.

When PostgreSQL stops (restart, failover, network cut), queries raise
OperationalError or InterfaceError. The API views already map these to 503
in their own error format; this middleware covers everything else that
reaches the database: the admin, the staff pages, the session and
authentication middleware, and any API code path that lets the error escape.

- A view's error is answered directly (process_exception), with one warning
  line in the log instead of a traceback per request.
- An error raised outside a view (a middleware saving the session, say)
  has already become Django's 500 page when it reaches us; the
  `got_request_exception` signal marks the request, and the 500 is replaced.

The answer is `503` with `Retry-After`, in the API's format on API paths and
a short plain page elsewhere. Nothing partial is written: the failed
transaction is rolled back by the database, and with CONN_HEALTH_CHECKS
Django opens a fresh connection on the next request once the database is
back, without restarting the application.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from billing.lib.api_error_pages import api_error_response

logger = logging.getLogger("billing.db")

RETRY_AFTER_SECONDS = 5
_MARK = "_database_unavailable"
UNAVAILABLE_PAGE = (
    "<!doctype html><html><head><title>Service unavailable</title></head><body>"
    "<h1>Service temporarily unavailable</h1>"
    "<p>The database cannot be reached. Nothing was changed; please try again shortly.</p>"
    "</body></html>"
)


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


def unavailable_response(request: HttpRequest) -> HttpResponse:
    response = api_error_response(request, 503)
    if response is None:
        response = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type="text/html")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_request(sender, request=None, **kwargs) -> None:
    if request is not None and is_database_unavailable(sys.exc_info()[1]):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_request, dispatch_uid="billing.db_errors.mark_request")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        logger.warning(
            "database unavailable (%s) on %s %s: answered 503",
            type(exception).__name__,
            request.method,
            request.path,
        )
        return unavailable_response(request)
