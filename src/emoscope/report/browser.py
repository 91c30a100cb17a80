"""Open a report in a real headless Chromium (Playwright) for tests and screenshots.

Uses the system Chromium (`/usr/bin/chromium`, or `$EMOSCOPE_CHROMIUM`), never Playwright's own
browser download. Every request other than file:// and data: is blocked and recorded, so a page that
tries to reach the network is caught rather than silently working online.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emoscope.core.errors import UserError

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
READY_TIMEOUT_MS = 60_000
_UNSTICK_NAV = "document.querySelectorAll('nav.toc').forEach(n => { n.style.position = 'static'; })"


def chromium_path() -> str | None:
    """The Chromium executable to use, or None when there is none."""
    wanted = os.environ.get("EMOSCOPE_CHROMIUM") or DEFAULT_CHROMIUM
    if Path(wanted).is_file() and os.access(wanted, os.X_OK):
        return wanted
    return shutil.which(wanted)


def unavailable_reason() -> str | None:
    """Why a browser cannot be launched here (None when it can): missing playwright and/or Chromium."""
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is not installed (pip install -e '.[test]')")
    if chromium_path() is None:
        where = os.environ.get("EMOSCOPE_CHROMIUM") or DEFAULT_CHROMIUM
        problems.append(
            f"no Chromium executable at {where}: install Debian's with `sudo apt-get install chromium` "
            "(`make test` does so when run as root), or set EMOSCOPE_CHROMIUM to another one"
        )
    return "; ".join(problems) or None


@dataclass
class PageLog:
    """What happened while the page was open."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return (
            [f"console: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"network request blocked: {u}" for u in self.blocked_requests]
        )


@contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium `Browser` (Playwright), closed on exit."""
    reason = unavailable_reason()
    if reason:
        raise UserError(f"cannot start a browser: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(
    html_path: str | Path, *, browser: Any = None, width: int = 1400, height: int = 900
) -> Iterator[tuple[Any, PageLog]]:
    """Open a report file, wait until its figures are drawn, yield (page, log).

    `browser` reuses a browser from `launch()`; without it one is started for this page only.
    """
    path = Path(html_path).resolve()
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    if browser is None:
        with launch() as b, open_page(path, browser=b, width=width, height=height) as opened:
            yield opened
        return
    log = PageLog()
    context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
    try:
        page = context.new_page()
        page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: log.page_errors.append(str(e)))

        def guard(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                route.continue_()
            else:
                log.blocked_requests.append(url)
                route.abort()

        page.route("**/*", guard)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function("window.emoscopeReady === true", timeout=READY_TIMEOUT_MS)
        yield page, log
    finally:
        context.close()


def screenshot(
    html_path: str | Path,
    png_path: str | Path,
    *,
    full_page: bool = True,
    width: int = 1400,
    height: int = 900,
    selector: str | None = None,
    browser: Any = None,
) -> Path:
    """Render a report in headless Chromium and save a PNG: the whole page, or one element by CSS selector
    (e.g. "#tsne"). Returns the PNG path. Raises RuntimeError listing console errors or network attempts.

    Without `browser` a Chromium is started for this call, in a separate thread, so it works from any
    context (a test holding another browser, a notebook with a running event loop).
    """
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)

    def shoot(b: Any) -> None:
        with open_page(html_path, browser=b, width=width, height=height) as (page, log):
            if selector:
                # the sticky table of contents would otherwise cover the element
                page.evaluate(_UNSTICK_NAV)
                page.locator(selector).screenshot(path=str(out))
            else:
                page.screenshot(path=str(out), full_page=full_page)
        if log.problems:
            raise RuntimeError(f"{html_path}: " + "; ".join(log.problems))

    if browser is not None:
        shoot(browser)
        return out

    def standalone() -> None:
        with launch() as b:
            shoot(b)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(standalone).result()
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m emoscope.report.browser REPORT.html OUT.png [--selector CSS] [--viewport]`"""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m emoscope.report.browser", description=screenshot.__doc__)
    ap.add_argument("html")
    ap.add_argument("png")
    ap.add_argument("--selector", help="screenshot one element, e.g. '#tsne'")
    ap.add_argument("--viewport", action="store_true", help="only the first screen, not the full page")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args(argv)
    try:
        out = screenshot(
            args.html,
            args.png,
            full_page=not args.viewport,
            width=args.width,
            height=args.height,
            selector=args.selector,
        )
    except (UserError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
