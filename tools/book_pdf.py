"""``make pdf``: the whole built book as one PDF, printed offline by the Chromium the browser test uses.

Each page of ``_toc.yml`` is loaded from ``_build/html`` over localhost (MathJax rendered first), printed
with the theme's print style sheet (no sidebars), and the pages are joined in reading order with one
bookmark per chapter. Usage: ``python tools/book_pdf.py [_build/html] [_build/pdf/subspacelens.pdf]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfWriter

from subspacelens.book import toc_pages
from subspacelens.paths import resolve
from subspacelens.site import chromium, open_page, serve

MATH_TIMEOUT_MS = 45_000


def print_pages(html: Path, out: Path) -> tuple[int, int]:
    """Print every page of the book into ``out``; returns (chapters, PDF pages)."""
    writer = PdfWriter()
    pages = toc_pages()
    with tempfile.TemporaryDirectory() as scratch, serve(html) as url, chromium() as browser:
        for index, page_path in enumerate(pages):
            page = open_page(browser, url, page_path)
            if page.locator("main .math").count():
                page.wait_for_selector("main mjx-container", state="attached", timeout=MATH_TIMEOUT_MS)
            title = page.locator("main h1").first.inner_text().strip().rstrip("#").strip()
            part = Path(scratch) / f"{index:02d}.pdf"
            page.pdf(path=str(part), format="A4", print_background=True,
                     margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"})
            page.close()
            first_page = len(writer.pages)
            writer.append(str(part))
            writer.add_outline_item(title, first_page)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial.pdf")
        with partial.open("wb") as file:
            writer.write(file)
        partial.replace(out)  # a failed run leaves the previous PDF as it was
    return len(pages), len(writer.pages)


def main(argv: list[str]) -> int:
    html = resolve(argv[1] if len(argv) > 1 else "_build/html")
    out = resolve(argv[2] if len(argv) > 2 else "_build/pdf/subspacelens.pdf")
    start = time.perf_counter()
    chapters, pages = print_pages(html, out)
    print(f"{out}: {chapters} chapters, {pages} pages, printed in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
