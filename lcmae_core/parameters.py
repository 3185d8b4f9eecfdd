"""The notebooks' parameters, read from their ``parameters`` cells: what each page declares, and ``-p`` values checked
against it. The batch (``lcmae_core.batch``) passes them to the notebooks; the planner (``lcmae_core.plan``) plans with
the same values, so that the runs a ``-p`` adds (another mask ratio, other seeds) train in its parallel workers."""

from __future__ import annotations

import ast
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
UNEVALUATED = object()  # a parameter default that is an expression, not a literal


class ParameterError(ValueError):
    """A ``-p`` value no selected notebook takes, or of the wrong type. One line."""


def declared_parameters(notebook: Path) -> dict:
    """{name: default value} of a notebook's parameters cell (``UNEVALUATED`` for an expression)."""
    import papermill as pm  # lazy: optional, and slow to import (python -m lcmae_core loads this module)

    out = {}
    for k, info in pm.inspect_notebook(str(notebook)).items():
        try:
            out[k] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[k] = UNEVALUATED
    return out


def parse_value(text: str):
    """A ``-p`` value: a Python literal (number, list, True, None, quoted text), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def type_ok(default, value) -> bool:
    """Does ``value`` fit a parameter whose default is ``default`` (an int for an int, a list for a list, ...)?"""
    if default is None or value is None or default is UNEVALUATED:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple)) or (isinstance(value, str) and value == "auto")
    return isinstance(value, type(default)) or (isinstance(default, str) and isinstance(value, (list, tuple)))


def page_parameters(names: list[str], parameters: dict, notebook_dir: Path | None = None) -> dict[str, dict]:
    """{notebook: the ``parameters`` it declares}, each value checked against the type of its default. Raises
    ``ParameterError`` (one line) for a parameter no selected notebook takes, or a badly typed value."""
    notebook_dir = Path(notebook_dir or NOTEBOOK_DIR)
    declared = {n: declared_parameters(notebook_dir / f"{n}.ipynb") for n in names}
    for k, v in parameters.items():
        takers = [n for n in names if k in declared[n]]
        if not takers:
            raise ParameterError(f"no selected notebook takes parameter {k!r}; see the parameters cells of "
                                 f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
        for n in takers:
            if not type_ok(declared[n][k], v):
                raise ParameterError(f"parameter {k!r} of {n} takes a {type(declared[n][k]).__name__} like "
                                     f"{declared[n][k]!r}, got {v!r}")
    return {n: {k: v for k, v in parameters.items() if k in declared[n]} for n in names}


__all__ = ["NOTEBOOK_DIR", "UNEVALUATED", "ParameterError", "declared_parameters", "parse_value", "type_ok",
           "page_parameters"]
