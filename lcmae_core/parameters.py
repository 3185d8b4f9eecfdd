"""The notebooks' parameters, read from their ``parameters`` cells: what each page declares, and ``-p`` values checked
against it. The batch (``lcmae_core.batch``) passes them to the notebooks; the planner (``lcmae_core.plan``) plans with
the same values, so that the runs a ``-p`` adds (another mask ratio, other seeds) train in its parallel workers."""

from __future__ import annotations

import ast
from pathlib import Path

from . import scales
from .data import FOLDER_DATASETS, PHOTO_NAMES, analysis_folder, list_image_files
from .models import TABLE1_SETTINGS
from .models.decoders import DECODERS

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
    if isinstance(default, int):  # an integer takes an integer: 2.5 images is no count
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple)) or (isinstance(value, str) and value == "auto")
    return isinstance(value, type(default)) or (isinstance(default, str) and isinstance(value, (list, tuple)))


# what each parameter's value must be, wherever a page declares it: (check, what it must be)
def _count(lo: int):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo), f"an integer of at least {lo}"


def _ratio(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1


def _list(item, distinct: bool = True):
    def ok(v):
        return isinstance(v, (list, tuple)) and all(item(x) for x in v) and (not distinct or len(set(v)) == len(v))
    return ok


RULES = {
    "n_images": _count(1), "n_groups": _count(1), "n_shown": _count(1), "n_queries": _count(1), "draws": _count(1),
    "mask_seed": _count(0), "image_seed": _count(0), "query_seed": _count(0), "epochs": _count(0),
    "mask_ratio": (_ratio, "a number between 0 and 1 (exclusive)"),
    "mask_ratios": (_list(_ratio), "a list of distinct numbers between 0 and 1 (exclusive), e.g. [0.9, 0.75]"),
    "seeds": (_list(_count(0)[0]), "a list of distinct non-negative integers, e.g. [0, 1, 2]"),
    "block_multiples": (_list(lambda x: _count(1)[0](x) and x % 2 == 1), "a list of distinct odd positive integers, "
                                                                          "e.g. [1, 3, 5]"),
    "settings": (_list(lambda x: x in TABLE1_SETTINGS), f"a list of Table 1's settings, {', '.join(TABLE1_SETTINGS)}"),
    "decoders": (_list(lambda x: x in DECODERS), f"a list of Table 2's decoders, {', '.join(DECODERS)}"),
    "image": (lambda v: v in PHOTO_NAMES, f"one of the bundled photos, {', '.join(PHOTO_NAMES)}"),
    "tau": (lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1),
            "None, or a number in (0, 1]"),
    "image_indices": (_list(_count(0)[0], distinct=False), "a list of non-negative integers"),
    "layers": (lambda v: v is None or _list(_count(1)[0])(v), "None, or a list of distinct layers from 1"),
}


def check_page(page: str, values: dict, notebook_dir: Path | None = None) -> None:
    """A page's parameter values, checked where they enter, before anything is loaded or trained: each against its
    rule (``RULES``), then against each other (the images a replicate group needs, the images shown among those
    sampled, the images a folder holds). ``values`` may hold more (a notebook passes its ``globals()``): only the
    page's declared parameters are read. A bad value raises ``ParameterError``: one line naming it and the fix."""
    declared = declared_parameters(Path(notebook_dir or NOTEBOOK_DIR) / f"{page}.ipynb")
    v = {k: values[k] for k in declared if k in values}
    for k, x in v.items():
        if k in RULES and not RULES[k][0](x):
            raise ParameterError(f"parameter {k!r} of {page} must be {RULES[k][1]}, got {x!r}")
    n = v.get("n_images")
    if n is not None:
        if any(i >= n for i in v.get("image_indices") or []):
            raise ParameterError(f"image_indices {v['image_indices']} of {page} must be below n_images {n}")
        if v.get("n_shown", 0) > n:
            raise ParameterError(f"n_shown {v['n_shown']} of {page} is more than its n_images {n}")
        groups = v.get("n_groups")
        one_model = bool(v.get("mae_checkpoint")) or (
            "scale" in v and scales.get(v["scale"]).published_models and "dino" in declared)
        if groups and groups > 1 and one_model and n < 2 * groups:
            raise ParameterError(f"n_images {n} of {page} gives fewer than 2 images to each of its n_groups {groups} "
                                 f"replicate groups (Eq. 7 compares images in pairs); pass -p n_images {2 * groups} "
                                 f"or more, or -p n_groups {max(1, n // 2)}")
        root = v.get("data_root")
        dataset = v.get("dataset") or (scales.get(v["scale"]).data.get("dataset") if v.get("scale") in scales.SCALES
                                       else "")
        if root and dataset in FOLDER_DATASETS:
            found = len(list_image_files(analysis_folder(root, "val"))[0])
            if found < n:
                raise ParameterError(f"n_images {n} of {page} is more than the {found} images of {root}; pass -p "
                                     f"n_images {found} or fewer, or a larger folder")


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
           "page_parameters", "RULES", "check_page"]
