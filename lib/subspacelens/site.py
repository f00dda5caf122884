"""The built book as a reader's browser sees it: served on localhost and opened in headless Chromium.

Shared by the browser test (``tests/browser``) and ``make pdf`` (``tools/book_pdf.py``), so both load the
pages the same way: over HTTP from ``_build/html`` (as from a web server), with Debian's Chromium and the
flags that keep it from reaching for the closed network.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

# The closed network refuses Chromium's background connections; these flags keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # one line per request would drown a test report
        pass


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port for the duration of the block; yields its base URL."""
    if not Path(directory, "index.html").is_file():
        raise FileNotFoundError(f"{directory}: no index.html; build the book first (make html)")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Debian's package) driven by Playwright, closed at the end of the block."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        raise FileNotFoundError("Debian's chromium package is not installed (make browser-test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


LOAD_TIMEOUT_MS = 120_000
"""How long a page may take to load and go network-idle."""

TYPESET = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;
}"""
"""Resolves once MathJax (if the page loads it) has typeset the page and every font it uses has loaded."""


def open_page(browser, base_url: str, page_path: str, *, width: int = 1280, height: int = 900):
    """A new browser page showing ``page_path`` (``book/intro``), loaded until the network is idle, its math
    typeset and its fonts in (what a reader sees: until then math is raw TeX and text in a fallback font,
    both wider)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    # generous: on a loaded 2-core machine a figure-heavy page can take longer than playwright's 30 s default
    page.goto(f"{base_url}/{page_path}.html", wait_until="load", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_load_state("networkidle", timeout=LOAD_TIMEOUT_MS)
    page.evaluate(TYPESET)
    return page
