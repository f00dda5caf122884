r"""Machine-checkable criteria: a small, safe expression language over a measure's named quantities.

``"ratio_low >= 10"``, ``"1/3 <= min_depth <= 2/3"``: numbers, quantity names, ``+ - * / **``, chained
comparisons, ``and``/``or``/``not`` and ``abs``/``min``/``max``. The findings file keeps one claim per
criterion; conjunctions are allowed by the grammar but the book splits them into rows.
"""

from __future__ import annotations

import ast
import operator

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_FUNCTIONS = {"abs": abs, "min": min, "max": max}


def _parse(criterion):
    try:
        tree = ast.parse(criterion, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"criterion: cannot parse {criterion!r} ({error.msg})") from None
    for node in ast.walk(tree):
        allowed = (ast.Expression, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                   ast.BinOp, ast.Name, ast.Load, ast.Constant, ast.Call) + tuple(_COMPARE) + tuple(_BINARY)
        if not isinstance(node, allowed):
            raise ValueError(f"criterion: {type(node).__name__} is not allowed in {criterion!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise ValueError(f"criterion: only {sorted(_FUNCTIONS)} may be called in {criterion!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ValueError(f"criterion: only numbers are allowed as constants in {criterion!r}")
    return tree


def criterion_names(criterion):
    """The quantity names a criterion refers to (raises ``ValueError`` if it does not parse)."""
    tree = _parse(criterion)
    return sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - set(_FUNCTIONS))


def evaluate_criterion(criterion, quantities):
    """Evaluate a criterion such as ``"ratio >= 10 and 1/3 <= min_depth <= 2/3"`` → ``bool``.

    Allowed: numbers, names of ``quantities``, ``+ - * / **``, comparisons (chained), ``and``/``or``/
    ``not`` and ``abs``/``min``/``max``. An unknown name raises ``ValueError``; a NaN quantity makes
    every comparison it enters false.
    """

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in quantities:
                base = node.id.rsplit("_", 1)[0]
                if node.id.endswith(("_low", "_high")) and base in quantities:  # a bound of a known quantity
                    raise ValueError(f"criterion: {node.id!r} is a bound of the interval of {base!r}, and this run "
                                     "computed no intervals (n_boot = 0): give n_boot > 0")
                raise ValueError(f"criterion: unknown quantity {node.id!r}; known: {sorted(quantities)}")
            return float(quantities[node.id])
        if isinstance(node, ast.BoolOp):
            values = [bool(ev(v)) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            return (not ev(node.operand)) if isinstance(node.op, ast.Not) else -ev(node.operand)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comparator in zip(node.ops, node.comparators):
                right = ev(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
        raise AssertionError(type(node))

    return bool(ev(_parse(criterion)))


