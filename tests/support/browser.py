"""How the browser tests start Debian's Chromium (no browser download, no network),
sign in, and check that a page fits a 1,280 px window."""

from __future__ import annotations

from tests.support.artifacts import artifacts_dir

ARTIFACTS = artifacts_dir("browser")
WIDTH = 1280
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sign_in(page, live_server, username: str, password: str, next_url: str = "/admin/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def clipped(page, selector: str) -> list[str]:
    """Cells under `selector` whose text is cut off (wider content than their box)."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter(el => el.scrollWidth > el.clientWidth + 1)
            .map(el => `${el.className} (${el.scrollWidth - el.clientWidth}px): `
                       + el.innerText.slice(0, 40))""",
        selector,
    )


def fits(page, name: str) -> None:
    """Keep a screenshot and fail if the page scrolls sideways at 1,280 px."""
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    extra = overflow(page)
    assert extra <= 0, f"{name}: {extra}px wider than a {WIDTH}px window"
