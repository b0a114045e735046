"""Failed sign-ins counted per username and per client address, in Django's cache.

After `max_failures` failures within `window` seconds, for one username or from
one address, sign-in is refused for `lockout` seconds without checking the
password, so guessing gains nothing. A success clears the username's count, not
the address's: one valid account must not reset a password sprayer's budget.

The counters live in the default cache. With several server processes it must be
shared (CACHE_URL, e.g. Redis); a per-process cache multiplies the allowance.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest

KEY_PREFIX = "login-throttle"


def client_ip(request: HttpRequest, trusted_proxies: int = 0) -> str:
    """The client's address: REMOTE_ADDR, or behind `trusted_proxies` proxies the
    address the outermost of them saw (X-Forwarded-For, counted from the right,
    since a client can write anything on the left)."""
    if trusted_proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= trusted_proxies:
            return forwarded[-trusted_proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(kind: str, who: str, suffix: str) -> str:
    # Hashed: any username fits a cache key, and none is stored in clear.
    digest = hashlib.sha256(who.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}:{kind}:{digest[:40]}:{suffix}"


@dataclass(frozen=True)
class LoginThrottle:
    max_failures: int = 5
    window: int = 15 * 60
    lockout: int = 15 * 60

    def _subjects(self, username: str | None, ip: str) -> list[tuple[str, str]]:
        subjects = [("ip", ip)]
        if username:
            subjects.append(("user", username))
        return subjects

    def retry_after(self, username: str | None, ip: str) -> int:
        """Seconds until sign-in is allowed again; 0 when it is allowed now."""
        now = time.time()
        until = [
            cache.get(_key(kind, who, "locked"), 0) for kind, who in self._subjects(username, ip)
        ]
        return max(0, math.ceil(max(until) - now))

    def record_failure(self, username: str | None, ip: str) -> bool:
        """Count one failure; True when it starts a lockout (worth one log line)."""
        locked = False
        for kind, who in self._subjects(username, ip):
            count_key = _key(kind, who, "failures")
            cache.add(count_key, 0, self.window)
            try:
                count = cache.incr(count_key)
            except ValueError:  # expired between add and incr
                cache.set(count_key, 1, self.window)
                count = 1
            if count >= self.max_failures:
                cache.set(_key(kind, who, "locked"), time.time() + self.lockout, self.lockout)
                cache.delete(count_key)
                locked = True
        return locked

    def record_success(self, username: str) -> None:
        cache.delete(_key("user", username, "failures"))
