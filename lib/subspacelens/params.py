"""Chapter parameters: what a chapter's ``parameters`` cell defines, and parameter files checked against it.

papermill injects every key of a parameter file as a new assignment after the ``parameters`` cell, so a
mistyped key (``n_bootstrap`` for ``n_boot``) is silently ignored and the chapter runs on its default.
:func:`check_parameters` refuses such keys before the chapter runs (the Makefile calls it through
``python -m subspacelens check-params``).
"""

from __future__ import annotations

import ast
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import jupytext
import yaml


@dataclass(frozen=True)
class Parameter:
    """One assignment of a ``parameters`` cell: its name, its default as written, and the default's type
    (``None`` when the default is not a literal or is ``None``, so it does not say one)."""

    name: str
    default: str
    type: str | None

    def __str__(self) -> str:
        return f"{self.name} ({self.type})" if self.type else self.name


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Parameter]:
    """The parameters the cell tagged ``parameters`` of a jupytext notebook (``notebooks/<name>.md``) assigns."""
    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook: no such file {path}")
    cells = [c for c in jupytext.read(path).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"notebook: {path} has {len(cells)} cells tagged 'parameters', expected 1")
    found = {}
    for statement in ast.parse(cells[0].source).body:
        for name, value in _assignments(statement):
            found[name] = Parameter(name, ast.unparse(value) if value is not None else "", _literal_type(value))
    return found


def _assignments(statement: ast.stmt) -> list[tuple[str, ast.expr | None]]:
    """``(name, value)`` of ``x = v``, ``x: T = v`` and ``a, b = u, v`` (value ``None`` when unpaired)."""
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return [(statement.target.id, statement.value)]
    if not isinstance(statement, ast.Assign):
        return []
    pairs = []
    for target in statement.targets:
        if isinstance(target, ast.Name):
            pairs.append((target.id, statement.value))
        elif isinstance(target, ast.Tuple | ast.List) and all(isinstance(t, ast.Name) for t in target.elts):
            values = statement.value.elts if isinstance(statement.value, ast.Tuple | ast.List) else []
            paired = len(values) == len(target.elts)
            pairs += [(t.id, values[i] if paired else None) for i, t in enumerate(target.elts)]
    return pairs


def _literal_type(value: ast.expr | None) -> str | None:
    try:
        default = ast.literal_eval(value) if value is not None else None
    except ValueError:
        return None
    return None if default is None else type(default).__name__


def check_parameters(notebook: str | os.PathLike, params: str | os.PathLike) -> dict:
    """The parameter file's mapping, once every key is one the notebook's ``parameters`` cell assigns.

    Raises ``ValueError`` naming the unknown keys (with the nearest known name) and listing every known
    parameter with the type its default shows; ``FileNotFoundError`` naming a missing file.
    """
    params = Path(params)
    if not params.is_file():
        raise FileNotFoundError(f"params: no such file {params}")
    values = yaml.safe_load(params.read_text())
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"params: {params} must hold a mapping of parameter names to values")
    known = notebook_parameters(notebook)
    unknown = [key for key in values if key not in known]
    if unknown:
        guesses = {key: difflib.get_close_matches(str(key), list(known), n=1) for key in unknown}
        hints = "".join(f"; {key!r}: did you mean {near[0]!r}?" for key, near in guesses.items() if near)
        raise ValueError(
            f"params: {params} sets {unknown}, which {Path(notebook).name} does not define{hints}. "
            f"Its parameters: {', '.join(map(str, known.values()))}"
        )
    return values
