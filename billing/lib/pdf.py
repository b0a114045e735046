"""HTML to PDF with WeasyPrint, never touching the network.

Templates may only reference files under the project's static folders or
MEDIA_ROOT (e.g. the seller logo); any other URL, including one smuggled in
through user data, is refused by the URL fetcher.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

_ALLOWED_ROOTS: tuple[Path, ...] = ()


def _allowed_roots() -> tuple[Path, ...]:
    global _ALLOWED_ROOTS
    if not _ALLOWED_ROOTS:
        _ALLOWED_ROOTS = (
            Path(settings.BASE_DIR).resolve() / "templates",
            Path(settings.BASE_DIR).resolve() / "static",
            Path(settings.MEDIA_ROOT).resolve(),
        )
    return _ALLOWED_ROOTS


class BlockedURL(ValueError):
    pass


def local_url_fetcher(url: str, *args, **kwargs) -> dict:
    from weasyprint.urls import default_url_fetcher

    if not url.startswith("file://"):
        raise BlockedURL(f"refusing to fetch {url[:80]!r}: only local files are allowed")
    path = Path(url[len("file://") :]).resolve()
    if not any(path.is_relative_to(root) for root in _allowed_roots()):
        raise BlockedURL(f"refusing to read {path}: outside the allowed folders")
    return default_url_fetcher(url, *args, **kwargs)


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    base_url = (Path(settings.BASE_DIR) / "templates").as_uri() + "/"
    return HTML(string=html, base_url=base_url, url_fetcher=local_url_fetcher).write_pdf()
