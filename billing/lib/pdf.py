"""HTML to PDF with WeasyPrint, never touching the network.

Templates may only reference files under the project's templates and static
folders or MEDIA_ROOT (e.g. the seller logo). Any other URL, including one
smuggled in through user data, is refused by the URL fetcher before anything
is opened; fonts come from the machine through fontconfig.
"""

from __future__ import annotations

import logging
import mimetypes
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings


class FontSubsetNoticeFilter(logging.Filter):
    """Drop WeasyPrint's per-document notice that fonts are subset with fontTools
    (printed twice per PDF where the system's HarfBuzz lacks the subset library):
    the PDFs are the same, and the notice says nothing an operator can act on per file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Using fontTools instead of HarfBuzz-Subset")


class BlockedURL(ValueError):
    """A document asked for something other than a local project file."""


def _allowed_roots() -> tuple[Path, ...]:
    # Read on each call: MEDIA_ROOT is a setting, and tests point it elsewhere.
    base = Path(settings.BASE_DIR).resolve()
    return (base / "templates", base / "static", Path(settings.MEDIA_ROOT).resolve())


def local_path(url: str) -> Path:
    """The file a `file://` URL points to, if it lies inside an allowed folder."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        raise BlockedURL(f"refusing to fetch {url[:80]!r}: only local files are allowed")
    path = Path(url2pathname(parts.path)).resolve()
    if not any(path.is_relative_to(root) for root in _allowed_roots()):
        raise BlockedURL(f"refusing to read {path}: outside the allowed folders")
    return path


def fetch_local(url: str):
    """WeasyPrint's fetch, for allowed local files only (a URLFetcherResponse)."""
    from weasyprint.urls import URLFetcherResponse

    path = local_path(url)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return URLFetcherResponse(
        path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
    )


@cache
def _fetcher_class() -> type:
    # WeasyPrint takes a second to import: only processes that render pay for it.
    from weasyprint.urls import URLFetcher

    class LocalURLFetcher(URLFetcher):
        """WeasyPrint's fetcher, restricted to reading allowed local files."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols={"file"}, allow_redirects=False, timeout=1)

        def fetch(self, url, headers=None):
            return fetch_local(url)

    return LocalURLFetcher


def local_url_fetcher():
    """A fresh fetcher per document (WeasyPrint's fetchers keep per-request state)."""
    return _fetcher_class()()


def html_to_pdf(html: str, **options) -> bytes:
    """`options` go to WeasyPrint's `write_pdf` (e.g. `pdf_variant="pdf/a-3b"`)."""
    from weasyprint import HTML

    base_url = (Path(settings.BASE_DIR) / "templates").as_uri() + "/"
    return HTML(string=html, base_url=base_url, url_fetcher=local_url_fetcher()).write_pdf(
        **options
    )
