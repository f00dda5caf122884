"""The built book, as a reader sees it: every chapter page loaded in headless Chromium.

Run by ``make test`` after ``jupyter-book build`` (which sets BOOK_HTML); the HTML is
served on localhost so pages load as they would from a web server. Screenshots of every
page are kept under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from subspacelens.book import toc_pages
from subspacelens.scorecard import load_findings
from subspacelens.scorecard.table import COLUMNS as SCORECARD_COLUMNS
from subspacelens.site import chromium, open_page, serve

ROOT = Path(__file__).resolve().parents[2]
BOOK_HTML = os.environ.get("BOOK_HTML")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
pytestmark = pytest.mark.skipif(not BOOK_HTML, reason="BOOK_HTML not set: `make browser-test` builds the book first")


NOTEBOOK_PAGES = [page for page in toc_pages() if (ROOT / f"{page}.ipynb").is_file()]


def figure_count(page: str) -> int:
    """How many PNG figures the executed notebook behind a page holds."""
    cells = json.loads((ROOT / f"{page}.ipynb").read_text())["cells"]
    return sum("image/png" in output.get("data", {}) for cell in cells for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def server():
    with serve(BOOK_HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as opened:
        yield opened


@pytest.fixture(scope="module")
def loaded(browser, server):
    """``loaded(page_path)``: the page, loaded once per worker and shared by every check of it.

    The checks of one page run on one worker (each is marked ``xdist_group`` by its page, see
    ``conftest.py``), in the order of this file; the only one that clicks (the toggles) comes last.
    """
    pages = {}

    def load(page_path):
        if page_path not in pages:
            pages[page_path] = open_page(browser, server, page_path)
        return pages[page_path]

    yield load
    for page in pages.values():
        page.close()


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_has_title_and_no_errors(loaded, page_path):
    page = loaded(page_path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).name}.png"), full_page=True)
    heading = page.locator("main h1").first.inner_text().strip()
    assert heading, f"{page_path}: no <h1> title"
    assert "SubspaceLens" in page.title()
    assert page.locator("main .output.traceback, main .output.error").count() == 0, f"{page_path}: error output"
    assert "Traceback (most recent call last)" not in page.locator("main").inner_text()


@pytest.mark.parametrize("page_path", NOTEBOOK_PAGES)
def test_figures_load(loaded, page_path):
    page = loaded(page_path)
    sizes = page.eval_on_selector_all("main img", "imgs => imgs.map(i => [i.src, i.naturalWidth, i.naturalHeight])")
    broken = [src for src, width, height in sizes if width == 0 or height == 0]
    assert not broken, f"{page_path}: figures that did not load: {broken}"
    assert len(sizes) >= figure_count(page_path), f"{page_path}: {len(sizes)} images shown, notebook has {figure_count(page_path)}"


@pytest.mark.parametrize("page_path", NOTEBOOK_PAGES)
def test_math_renders(loaded, page_path):
    page = loaded(page_path)
    if page.locator("main .math").count():
        page.wait_for_selector("main mjx-container", state="attached", timeout=45_000)


# Every chapter the findings file names shows its findings judged (at least the finding and its verdict
# under the controls); the scorecard page shows every column.
SCORECARD_PAGES = sorted({f"book/{finding['chapter']}" for finding in load_findings()} | {"book/scorecard"})


@pytest.mark.parametrize("page_path", SCORECARD_PAGES)
def test_scorecard_table_present(loaded, page_path):
    page = loaded(page_path)
    headers = page.eval_on_selector_all("main table th", "ths => ths.map(th => th.innerText.trim().toLowerCase())")
    wanted = SCORECARD_COLUMNS if page_path == "book/scorecard" else ["finding", "under controls"]
    missing = [column for column in wanted if column.lower() not in headers]
    assert not missing, f"{page_path}: no scorecard table with the columns {missing} (headers: {headers})"


@pytest.mark.parametrize("page_path", NOTEBOOK_PAGES)
def test_rerun_box_and_collapsed_code(loaded, page_path):
    # Every executed chapter closes with its recipe, and its code is one click away, not in the reader's way.
    page = loaded(page_path)  # the last check of the page: it clicks
    titles = page.eval_on_selector_all("main .admonition .admonition-title", "ts => ts.map(t => t.innerText.trim())")
    assert "How to rerun this chapter" in titles, f"{page_path}: no rerun box (admonitions: {titles})"
    assert page.locator("main .cell.tag_parameters, main .cell.tag_injected-parameters").count() == 0
    hidden = "main .cell.tag_hide-input:not(.tag_remove-input)"
    toggles = page.locator(f"{hidden} details")
    assert toggles.count() == page.locator(hidden).count() > 0, f"{page_path}: a collapsed cell has no toggle"
    first = toggles.first
    code = first.locator(".cell_input")
    assert not code.is_visible()
    first.locator("summary").click()
    assert code.is_visible(), f"{page_path}: the toggle does not show the code"


@pytest.mark.parametrize("width", [1400, 800])
def test_scorecard_verdicts_fit_the_text_column(browser, server, width):
    # The page a reader most wants: its verdict column is on screen without scrolling sideways.
    page = open_page(browser, server, "book/scorecard", width=width)
    table = page.locator("main table.scorecard")
    assert table.count() == 1, "book/scorecard: no styled scorecard table"
    right_edge = page.locator("main").bounding_box()
    right_edge = right_edge["x"] + right_edge["width"]
    verdict = table.locator("th", has_text="under controls").bounding_box()
    assert verdict["x"] + verdict["width"] <= min(right_edge, width) + 1, f"verdict column cut off at {width} px"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"scorecard-{width}px.png"), full_page=True)
    page.close()
