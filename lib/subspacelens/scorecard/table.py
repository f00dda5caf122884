r"""The scorecard table: every finding judged raw (as the blog measured) and under the controls.

Each finding of ``blog_findings.yaml`` names a measure, its ``options`` and up to two criteria:
``criterion`` (the blog's claim on the raw statistic) and ``controlled`` (``options`` added to the
measure — e.g. ``scale: rms``, ``center: class`` — and the criterion judged on that, interval-aware).
``kind: tautology`` marks claims that hold for any nested labelling; ``kind: control`` marks the rows the
book adds (no raw verdict). A ``landmark`` quantity whose curve is flat within its interval is reported
as "flat, no landmark" instead of holds/fails.
"""

from __future__ import annotations

import pandas as pd

from .criteria import evaluate_criterion
from .registry import MEASURES, load_findings
from .session import MissingCache, Session

NOT_RUN = "not run"
HOLDS, FAILS, FLAT = "holds", "fails", "flat, no landmark"
BY_CONSTRUCTION = "holds for any nested labelling"
NOT_APPLICABLE = "—"
VERDICTS = (HOLDS, FAILS, FLAT, BY_CONSTRUCTION, NOT_RUN, NOT_APPLICABLE)
COLUMNS = ["id", "chapter", "finding", "PixArt-α (blog)", "this run (raw)", "raw, as the blog measured",
           "this run (under controls)", "under controls", "criterion", "controlled criterion"]


def _options_key(options):
    return tuple(sorted((k, str(v)) for k, v in options.items()))


def _measure(session, finding, options, results):
    spec = MEASURES[finding["measure"]]
    missing = [role for role in spec.roles if not session.has(role)]
    if missing:
        return MissingCache(", ".join(missing))
    key = (finding["measure"], _options_key(options))
    if key not in results:
        try:
            results[key] = spec.function(session, **options)
        except MissingCache as missing_part:
            results[key] = missing_part
    return results[key]


def _verdict(result, criterion, finding):
    if isinstance(result, MissingCache):
        return f"{NOT_RUN} (needs {result.args[0]})", NOT_RUN
    landmark = finding.get("landmark")
    if landmark and result.quantities.get(f"{landmark}_flat"):
        return result.display, FLAT
    holds = evaluate_criterion(criterion, result.quantities)
    if finding["kind"] == "tautology" and holds:
        return result.display, BY_CONSTRUCTION
    return result.display, HOLDS if holds else FAILS


def table(caches=None, chapter=None, *, session=None, findings=None, **session_kwargs):
    """One row per finding (of ``chapter``, or all): raw and controlled value and verdict.

    ``caches`` maps roles to caches (see :class:`Session`) unless a ``session`` is passed (the chapters pass
    theirs, so a number on a page and in the scorecard come from one computation).
    """
    findings = load_findings() if findings is None else findings
    if chapter is not None:
        findings = [f for f in findings if f["chapter"] == chapter]
        if not findings:
            raise ValueError(f"chapter: no findings for {chapter!r}")
    session = session or Session(caches, **session_kwargs)
    results, rows = {}, []
    for finding in findings:
        finding.setdefault("kind", "finding")
        options = dict(finding.get("options") or {})
        row = {"id": finding["id"], "chapter": finding["chapter"], "finding": finding["finding"],
               "PixArt-α (blog)": str(finding["blog_value"]), "criterion": finding.get("criterion", ""),
               "controlled criterion": ""}
        if finding.get("criterion") and finding["kind"] != "control":
            result = _measure(session, finding, options, results)
            row["this run (raw)"], row["raw, as the blog measured"] = _verdict(result, finding["criterion"], finding)
        else:
            row["this run (raw)"], row["raw, as the blog measured"] = NOT_APPLICABLE, NOT_APPLICABLE
        controlled = finding.get("controlled")
        if controlled:
            merged = {**options, **(controlled.get("options") or {})}
            result = _measure(session, finding, merged, results)
            row["this run (under controls)"], row["under controls"] = _verdict(result, controlled["criterion"], finding)
            row["controlled criterion"] = controlled["criterion"]
        else:
            row["this run (under controls)"], row["under controls"] = NOT_APPLICABLE, NOT_APPLICABLE
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _count(column):
    values = column.astype(str)
    return {verdict: int((values == verdict).sum()) for verdict in VERDICTS}


def summary(df):
    """A computed sentence: how many of the blog's findings hold raw, and how many survive the controls."""
    blog = df[df["raw, as the blog measured"] != NOT_APPLICABLE]
    raw, controlled = _count(blog["raw, as the blog measured"]), _count(blog["under controls"])
    measured_raw = raw[HOLDS] + raw[FAILS] + raw[BY_CONSTRUCTION] + raw[FLAT]
    survivors = blog.loc[blog["under controls"] == HOLDS, "id"].tolist()
    sentence = (f"Of the blog's {len(blog)} findings, {raw[HOLDS] + raw[BY_CONSTRUCTION]} of {measured_raw} measured hold on "
                f"the raw statistic as the blog measured it ({raw[BY_CONSTRUCTION]} of them for any nested labelling); "
                f"under the controls {controlled[HOLDS]} survive ({', '.join(survivors) or 'none'}), "
                f"{controlled[FAILS]} fail and {controlled[FLAT]} have no landmark")
    not_run = raw[NOT_RUN] + controlled[NOT_RUN]
    if not_run:
        sentence += f"; {not_run} verdicts were not run (a cache they need was not given)"
    added = df[df["raw, as the blog measured"] == NOT_APPLICABLE]
    if len(added):
        c = _count(added["under controls"])
        sentence += f". Of the {len(added)} controls the book adds, {c[HOLDS]} hold and {c[FAILS]} fail"
    return sentence + "."


def chapter_sentence(card):
    """A chapter's closing verdict, computed: each finding of the page raw → under the controls."""
    parts = []
    for row in card.to_dict("records"):
        raw, controlled = row["raw, as the blog measured"], row["under controls"]
        if raw == NOT_APPLICABLE:
            parts.append(f"*{row['finding']}* — a control the book adds: **{controlled}**")
        else:
            parts.append(f"*{row['finding']}* — raw: **{raw}**; under the controls: **{controlled}**")
    return "What survives the controls on this page: " + "; ".join(parts) + "."
