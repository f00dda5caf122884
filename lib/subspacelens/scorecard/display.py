"""The scorecard as a reader reads it: a compact styled table that fits the book's text column.

:func:`styled` turns :func:`~subspacelens.scorecard.table` into a pandas ``Styler``: one row per finding
linked to the chapter that measures it, the blog's value, this run's controlled value (with its
interval), and both verdicts as a mark, a colour *and* the verdict in words (colour is never the only
carrier). The full table, criteria included, stays available as the DataFrame itself.
"""

from __future__ import annotations

import html

import pandas as pd

from .table import BY_CONSTRUCTION, FAILS, FLAT, HOLDS, NOT_APPLICABLE, NOT_RUN

MARKS = {HOLDS: ("✓", "#1a7f37"), FAILS: ("✗", "#cf222e"), FLAT: ("≈", "#6e7781"),
         BY_CONSTRUCTION: ("≡", "#9a6700"), NOT_RUN: ("…", "#6e7781"), NOT_APPLICABLE: ("", "#6e7781")}
"""Verdict → (mark, colour); the colours are GitHub's accessible success / danger / muted / attention."""

COMPACT = {"finding": "finding", "PixArt-α (blog)": "PixArt-α (blog)", "this run (under controls)": "this run",
           "raw, as the blog measured": "raw", "under controls": "under controls"}
WIDTHS = {"finding": "30%", "PixArt-α (blog)": "14%", "this run": "32%", "raw": "12%", "under controls": "12%"}


def _verdict_html(verdict):
    mark, colour = MARKS.get(verdict, ("", "#6e7781"))
    if verdict == NOT_APPLICABLE:
        return '<span title="no raw verdict: a control the book adds">—</span>'
    return f'<span style="color:{colour};font-weight:600">{mark} {html.escape(verdict)}</span>'


def styled(card: pd.DataFrame, *, link=True):
    """A ``Styler`` of the scorecard (``card`` from :func:`~subspacelens.scorecard.table`) for a book page.

    ``link``: each finding links to its chapter's page (``<chapter>.html``, a sibling in the built book).
    """
    missing = [column for column in ("chapter", "id", *COMPACT) if column not in card.columns]
    if missing:
        raise ValueError(f"card: not a scorecard table, missing columns {missing}")
    compact = card[list(COMPACT)].rename(columns=COMPACT).copy()
    findings = [html.escape(text) for text in card["finding"]]
    if link:
        findings = [f'<a href="{chapter}.html">{text}</a>' for chapter, text in zip(card["chapter"], findings)]
    compact["finding"] = findings
    compact["PixArt-α (blog)"] = [html.escape(str(value)) for value in compact["PixArt-α (blog)"]]
    compact["this run"] = [html.escape(str(value)) for value in compact["this run"]]
    for column in ("raw", "under controls"):
        compact[column] = [_verdict_html(value) for value in compact[column]]
    styles = [{"selector": "", "props": "table-layout: fixed; width: 100%; font-size: 0.82em;"},
              {"selector": "td, th", "props": "overflow-wrap: anywhere; vertical-align: top; text-align: left;"}]
    styles += [{"selector": f"th.col_heading.col{i}", "props": f"width: {WIDTHS[name]};"}
               for i, name in enumerate(compact.columns)]
    return (compact.style.set_uuid("scorecard").hide(axis="index").set_table_attributes('class="scorecard"')
            .set_table_styles(styles))
