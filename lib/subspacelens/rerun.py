"""The reader's recipe on every executed chapter: how to rerun it, with what, from which caches, how long.

Run after papermill has executed a chapter (the Makefile does, ``python -m subspacelens rerun-box``), this
adds to the executed notebook — outputs untouched — a closing Markdown cell "How to rerun this chapter":

* the exact ``make chapter NB=… PARAMS=…`` command;
* every parameter with the value this run used (papermill's injected value, else the default) and its
  meaning (the comment on its line in the ``parameters`` cell, after the comment lines right above it);
* every activation cache among the parameters, with the config hash its capture recorded;
* the time the run spent in the chapter's cells (papermill's record).

It also tags the two parameters cells ``remove-cell`` (the table shows what they say) and every other code
cell whose source is still on the page ``hide-input`` (the code one click away from its figure, table or
sentence). Running it again
replaces the box, so a re-executed chapter never carries two.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize

import nbformat

from .book import recorded_seconds
from .paths import resolve

BOX_TAG = "rerun-box"
HIDDEN_INPUT = "hide-input"
REMOVED = "remove-cell"
PARAMETER_TAGS = ("parameters", "injected-parameters")
ALREADY_OUT_OF_VIEW = ("remove-input", "remove-cell")


def _tags(cell) -> list[str]:
    return cell.setdefault("metadata", {}).setdefault("tags", [])


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _assigned(source: str) -> dict[str, tuple[str, str]]:
    """``{name: (value as written, comment)}`` for the assignments of a parameters cell, in order."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    found = {}
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            # its meaning: the comment lines right above it (a long one is written there), then its own
            above = statement.lineno - 1
            while above in comments and source.splitlines()[above - 1].lstrip().startswith("#"):
                above -= 1
            lines = range(above + 1, (statement.end_lineno or statement.lineno) + 1)
            comment = " ".join(comments[line] for line in lines if line in comments)
            found[statement.targets[0].id] = (ast.unparse(statement.value), comment)
    return found


def _caches(value: str) -> list[str]:
    """The ``.zarr`` paths a parameter value names (a string or a list of strings)."""
    try:
        literal = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return []
    paths = literal if isinstance(literal, list) else [literal]
    return [p for p in paths if isinstance(p, str) and p.endswith(".zarr")]


def _config_hash(path: str) -> str:
    from .cache import _read_attrs

    store = resolve(path)
    if not store.exists():
        return "not present"
    try:
        return str(_read_attrs(store).get("config_hash") or "— (not a capture)")
    except Exception as error:  # a store this run cannot read: say so in the box rather than fail the build
        return f"unreadable ({type(error).__name__})"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def box(notebook, chapter: str, params: str, seconds: float) -> str:
    """The Markdown of the rerun box for an executed ``notebook`` (an ``nbformat`` notebook)."""
    cells = {tag: next((c for c in notebook.cells if tag in _tags(c)), None) for tag in PARAMETER_TAGS}
    if cells["parameters"] is None:
        raise ValueError(f"{chapter}: no cell tagged 'parameters'")
    defaults = _assigned(_source(cells["parameters"]))
    injected = _assigned(_source(cells["injected-parameters"])) if cells["injected-parameters"] else {}
    rows = ["| parameter | value in this run | meaning |", "|---|---|---|"]
    caches = []
    for name, (default, meaning) in defaults.items():
        value = injected.get(name, (default, ""))[0]
        rows.append(f"| `{name}` | `{_cell(value)}` | {_cell(meaning)} |")
        caches += [path for path in _caches(value) if path not in caches]
    cache_rows = ["| cache | config hash |", "|---|---|"] + [f"| `{p}` | `{_config_hash(p)}` |" for p in caches]
    return "\n".join([
        ":::{admonition} How to rerun this chapter",
        ":class: dropdown tip",
        "From the repository root (the two commands of the README install everything first):",
        "",
        "```bash",
        f"make chapter NB={chapter} PARAMS={params}",
        "```",
        "",
        f"This page ran for **{seconds:.0f} s** of cell execution, with these parameters (copy `{params}`, edit it,",
        "and pass the copy as `PARAMS=`; an unknown key stops the run with the list of known ones):",
        "",
        *rows,
        "",
        *(["It read these activation caches (the hash names the capture's whole configuration):", "",
           *cache_rows, ""] if caches else []),
        ":::",
    ])


def add_rerun_box(path: str | os.PathLike, chapter: str, params: str) -> None:
    """Add (or replace) the rerun box of an executed chapter and tag its cells; rewrites ``path`` atomically."""
    path = resolve(path)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [c for c in notebook.cells if BOX_TAG not in _tags(c)]
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = _tags(cell)
        if any(tag in tags for tag in PARAMETER_TAGS):
            wanted = REMOVED
        elif any(tag in tags for tag in ALREADY_OUT_OF_VIEW):
            wanted = None  # its source is removed from the page already: nothing to collapse
            if HIDDEN_INPUT in tags:
                tags.remove(HIDDEN_INPUT)
        else:
            wanted = HIDDEN_INPUT
        if wanted and wanted not in tags:
            tags.append(wanted)
    text = box(notebook, chapter, params, recorded_seconds(path))
    notebook.cells.append(nbformat.v4.new_markdown_cell(text, id=BOX_TAG, metadata={"tags": [BOX_TAG]}))
    partial = path.with_suffix(".rerun.tmp")
    nbformat.write(notebook, partial)
    partial.replace(path)
