"""Keep API keys out of the logs.

3scale clients send the key in the query string (`?access_token=...`,
`?provider_key=...`), and every access log writes the request line. A key in
a log file is a leaked key, so the filter here rewrites each record before
any handler formats it:

- `access_token=` / `provider_key=` values (query strings, form bodies),
  whatever percent-encoding spells the name (`access%5Ftoken`, `%61ccess_token`),
- `Authorization: Bearer|Basic ...` credentials,
- anything shaped like one of our keys (`bk_<prefix>_<secret>`): the public
  prefix is kept, so a log line still says which key was used.

`RedactingFilter` is installed on the handlers of Django's LOGGING (which
covers the development server's request log and `django.request`);
`RedactingGunicornLogger` does the same for gunicorn's access and error logs
(`gunicorn --logger-class billing.lib.log_redaction.RedactingGunicornLogger`).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # key=value in a query string or form body, also percent-encoded once.
    (
        re.compile(
            r"(?i)(?:(?<![a-z0-9])|(?<=%[0-9a-f]{2}))((?:access_token|provider_key)(?:=|%3D))"
            r"[^&\s\"'#;,]+"
        ),
        rf"\1{REDACTED}",
    ),
    # "access_token": "..." in a JSON body that ends up in a message.
    (
        re.compile(r"(?i)([\"'](?:access_token|provider_key)[\"']\s*:\s*[\"'])[^\"']+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # Our own key format, wherever it appears: keep the public prefix only.
    (re.compile(r"(bk_[0-9a-f]{8}_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
]


_SECRET_NAMES = frozenset({"access_token", "provider_key"})
# Any name=value pair: the name is compared after percent-decoding, because the
# query parser decodes names too (`access%5Ftoken` and `%61ccess_token` are
# `access_token`, and authenticate as such).
_PAIR_RE = re.compile(r"(?P<name>[A-Za-z0-9_.~+%\[\]-]+)(?P<sep>=|%3[dD])(?P<value>[^&\s\"'#;,]+)")
# One of our keys with its underscores percent-encoded (`bk%5F...%5F...`).
_ENCODED_KEY_RE = re.compile(r"(?i)(bk(?:_|%5f)[0-9a-f]{8}(?:_|%5f))[A-Za-z0-9_%-]+")


def _decoded_name(name: str) -> str:
    for _ in range(3):  # a name encoded twice is still the name
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().lower()


def _redact_pair(match: re.Match[str]) -> str:
    if _decoded_name(match.group("name")) in _SECRET_NAMES:
        return f"{match.group('name')}{match.group('sep')}{REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _PAIR_RE.sub(_redact_pair, text)
    return _ENCODED_KEY_RE.sub(rf"\1{REDACTED}", text)


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    return value


class RedactingFilter(logging.Filter):
    """Rewrite a record's message and arguments so no credential reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_value(value) for value in record.args)
        return True


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is a production dependency; keep this module importable without it.
    _GunicornLogger = None

if _GunicornLogger is not None:

    class RedactingGunicornLogger(_GunicornLogger):
        """gunicorn's logger with the redacting filter on its access and error logs."""

        def setup(self, cfg) -> None:
            super().setup(cfg)
            for log in (self.access_log, self.error_log):
                if not any(isinstance(f, RedactingFilter) for f in log.filters):
                    log.addFilter(RedactingFilter())

        def atoms(self, resp, req, environ, request_time):
            atoms = super().atoms(resp, req, environ, request_time)
            # The access log line is built from these atoms, not from record args.
            return {key: _redact_value(value) for key, value in atoms.items()}
