"""The chapter sources as a reader sees their code: no line wider than the text column."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from subspacelens.book import CODE_WIDTH

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.md"))
CODE_CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)```", re.DOTALL)


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(cell number, line) of every code line of a MyST notebook (cell options and magics left out)."""
    return [(number, line) for number, body in enumerate(CODE_CELL.findall(path.read_text()))
            for line in body.splitlines() if not line.startswith(":")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_code_line_is_wider_than_the_text_column(path):
    wide = [f"cell {number}: {len(line)} chars: {line.strip()[:60]}…" for number, line in code_lines(path)
            if len(line) > CODE_WIDTH]
    assert not wide, f"{path.name}: lines over {CODE_WIDTH} characters (run `make format`):\n" + "\n".join(wide)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_code_cell_parses(path):
    for number, body in enumerate(CODE_CELL.findall(path.read_text())):
        source = "\n".join(line for line in body.splitlines() if not line.startswith((":", "%")))
        ast.parse(source, filename=f"{path.name}, cell {number}")


def test_the_width_check_sees_a_wide_line(tmp_path):
    wide = tmp_path / "wide.md"
    wide.write_text("```{code-cell} ipython3\n:tags: [hide-input]\nx = '" + "a" * CODE_WIDTH + "'\n```\n")
    assert [len(line) for _, line in code_lines(wide)] == [CODE_WIDTH + 6]
