"""The training config text an mmsegmentation checkpoint keeps, read as Python literals.

mmseg 0.x stores `meta["config"]`, mmengine's runner `meta["cfg"]`: the config's `pretty_text`, Python source
of assignments (`model = dict(\n    backbone=dict(\n        strides=(\n            1,\n ...`). It is parsed
with `ast` and evaluated for literals only: numbers, strings, tuples, lists, dicts, `dict(k=v)` calls and
names assigned earlier in the text. Nothing is executed; any other expression (a call, an attribute, an
operator) reads as `UNKNOWN`, so one exotic entry does not hide the rest.
"""

from __future__ import annotations

import ast
from typing import Any


class _Unknown:
    """A config value that is not a literal (a call, an attribute, an operator)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class ConfigText:
    """The top-level assignments of a config text, with `get("model.backbone.strides")` lookups."""

    def __init__(self, values: dict[str, Any], readable: bool):
        self.values = values
        self.readable = readable  # False: no text, or text that is not Python

    def get(self, dotted: str, default: Any = None) -> Any:
        """The value at a dotted path of dict keys; `default` where a step is absent or not a dict."""
        node: Any = self.values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def first(self, *dotted: str, default: Any = None) -> Any:
        """The value of the first of `dotted` paths the config holds."""
        for d in dotted:
            value = self.get(d, _MISSING)
            if value is not _MISSING:
                return value
        return default


_MISSING = object()


def read_config_text(text: object) -> ConfigText:
    """`ConfigText` of `text`; an empty, unreadable one when `text` is not a string of Python syntax."""
    if not isinstance(text, str):
        return ConfigText({}, readable=False)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: null bytes
        return ConfigText({}, readable=False)
    values: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            values[stmt.targets[0].id] = _literal(stmt.value, values)
    return ConfigText(values, readable=True)


def _literal(node: ast.AST, names: dict[str, Any], depth: int = 0) -> Any:
    if depth > 50:  # deeper than any config; never recurse without bound
        return UNKNOWN

    def sub(n: ast.AST) -> Any:
        return _literal(n, names, depth + 1)

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(sub(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [sub(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):  # {**other}
            return UNKNOWN
        return {sub(k): sub(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = sub(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        return UNKNOWN
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):  # dict(**other)
            return UNKNOWN
        return {k.arg: sub(k.value) for k in node.keywords}
    if isinstance(node, ast.Name):
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        return names.get(node.id, UNKNOWN)
    return UNKNOWN
