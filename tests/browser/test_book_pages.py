"""The built book, as a reader sees it: every chapter page loaded in headless Chromium.

Run by ``make test`` after ``jupyter-book build`` (which sets BOOK_HTML); the HTML is
served on localhost so pages load as they would from a web server. Screenshots of every
page, at 1400 and at 800 px, are kept under ``test-artifacts/screenshots/``.
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
WIDTHS = (1400, 800)
"""Window widths a reader is checked at: a laptop, and a narrow window where the sidebars fold away."""
pytestmark = pytest.mark.skipif(not BOOK_HTML, reason="BOOK_HTML not set: `make browser-test` builds the book first")


NOTEBOOK_PAGES = [page for page in toc_pages() if (ROOT / f"{page}.ipynb").is_file()]


def figure_count(page: str) -> int:
    """How many PNG figures the executed notebook behind a page holds (shown, or glued for a figure)."""
    cells = json.loads((ROOT / f"{page}.ipynb").read_text())["cells"]
    return sum(any(mime.endswith("image/png") for mime in output.get("data", {}))
               for cell in cells for output in cell.get("outputs", []))


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

    def load(page_path, width=WIDTHS[0]):
        if (page_path, width) not in pages:
            pages[page_path, width] = open_page(browser, server, page_path, width=width)
        return pages[page_path, width]

    yield load
    for page in pages.values():
        page.close()


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_has_title_and_no_errors(loaded, page_path):
    page = loaded(page_path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).name}-{WIDTHS[0]}px.png"), full_page=True)
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
def test_every_figure_is_numbered_captioned_and_described(loaded, page_path):
    # A figure is read through its caption and referred to by number; alt text is its text equivalent.
    page = loaded(page_path)
    images = page.eval_on_selector_all("main article img", "imgs => imgs.map(i => [i.src.split('/').pop(), i.alt])")
    undescribed = [src for src, alt in images if not alt.strip()]
    assert not undescribed, f"{page_path}: figures without alt text: {undescribed}"
    figures = page.eval_on_selector_all(
        "main article figure",
        "fs => fs.map(f => [!!f.querySelector('img'), (f.querySelector('.caption-number') || {}).innerText || '',"
        " (f.querySelector('figcaption') || {}).innerText || ''])")
    with_images = [(number, caption) for has_image, number, caption in figures if has_image]
    assert len(with_images) >= figure_count(page_path), (
        f"{page_path}: {len(with_images)} numbered figures, the notebook has {figure_count(page_path)} images")
    unnumbered = [caption[:50] for number, caption in with_images if not number.strip().startswith("Fig")]
    assert not unnumbered, f"{page_path}: figures without a number: {unnumbered}"
    uncaptioned = [number for number, caption in with_images if len(caption.replace(number, "").strip()) < 20]
    assert not uncaptioned, f"{page_path}: figures without a caption: {uncaptioned}"


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


OVERFLOWING = """() => {
  // collapsed code counts too: a reader may open it
  document.querySelectorAll('main details').forEach(d => d.open = true);
  const column = document.querySelector('main article').getBoundingClientRect();
  const boxes = [...document.querySelectorAll(
    'main article pre, main article table, main article .pst-scrollable-table-container, main article img')];
  const wide = boxes
    .filter(el => el.offsetParent !== null)
    .filter(el => el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > column.right + 1)
    .map(el => `${el.tagName.toLowerCase()} ${Math.round(el.getBoundingClientRect().width)} px: `
               + (el.textContent || el.alt || '').trim().slice(0, 60));
  // chapter code may wrap as a safety net, but none of its lines should need to: unwrapped, it still fits
  const wrapped = [...document.querySelectorAll('main article .cell_input pre')]
    .filter(el => el.offsetParent !== null)
    .filter(el => { el.style.whiteSpace = 'pre'; const over = el.scrollWidth > el.clientWidth + 1;
                    el.style.whiteSpace = ''; return over; })
    .map(el => 'code line wider than its box: ' + el.textContent.split('\\n')
                 .reduce((a, b) => (b.length > a.length ? b : a), '').trim().slice(0, 60));
  return wide.concat(wrapped);
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page_path", toc_pages())
def test_nothing_scrolls_sideways(loaded, page_path, width):
    # Tables, code (opened) and figures fit the text column; run last on a page: it opens every toggle.
    page = loaded(page_path, width)
    overflowing = page.evaluate(OVERFLOWING)
    if width != WIDTHS[0]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).name}-{width}px.png"), full_page=True)
    assert not overflowing, f"{page_path} at {width} px: wider than the text column:\n" + "\n".join(overflowing)
