"""The browser's middlewares, stepped around on API requests.

`/api/`, `/admin/api/` and `/v1/` (less the schema and its readers, which are
pages) are answered by REST framework views that authenticate by API key only:
no session, no signed-in user, no flash messages, no static file. These
subclasses of the middlewares that serve the admin and the staff pages pass an
API request straight on, so it does not pay for a session store, a lazy user,
a message storage and their response hooks; every other request goes through
them unchanged. They stay subclasses so that Django's checks (the admin's
E408-E410) still find them in MIDDLEWARE.

What every request keeps, API or not (billing/settings.py MIDDLEWARE):
SecurityMiddleware (HSTS, nosniff, referrer policy, cross-origin opener
policy, the HTTPS redirect), DatabaseUnavailableMiddleware (a lost database
is a 503), RequestBodyLimitMiddleware (413/411 before any view reads a body),
CommonMiddleware (the Host header checked against ALLOWED_HOSTS, Content-
Length), CsrfViewMiddleware (the API views are exempt; an API request carries
no session cookie for it to protect) and XFrameOptionsMiddleware (DENY).
"""

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware

from billing.api.errors import api_of


def is_api_request(request: HttpRequest) -> bool:
    """Whether the request is for one of the two APIs (not their documentation pages)."""
    return api_of(request.path_info) is not None


class BrowserWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """Static files; no API path is one."""

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class BrowserSessionMiddleware(SessionMiddleware):
    """The staff's sessions; an API request is authenticated by its key, never a cookie."""

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class BrowserAuthenticationMiddleware(AuthenticationMiddleware):
    """`request.user` from the session; on API requests REST framework sets it from the key."""

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class BrowserMessageMiddleware(MessageMiddleware):
    """The admin's flash messages."""

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)
