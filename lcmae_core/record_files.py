"""What a record packs of the executed notebooks (``lcmae_core.records``): their figures, a widget's included, and
their files free of the paths of the machine that made them, so that a record made on any machine can be committed."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _widget_outputs(state: dict, model_id: str, seen: set) -> list[dict]:
    """The outputs that the widget ``model_id`` shows, in the order of its children: an Output widget's own, those
    of a box's children. ``state``: the notebook's frozen widget state (nbclient keeps it on execution)."""
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    s = state[model_id].get("state", {})
    out = list(s.get("outputs", [])) if state[model_id].get("model_name") == "OutputModel" else []
    for child in s.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            out += _widget_outputs(state, child[len("IPY_MODEL_"):], seen)
    return out


def extract_figures(notebook: Path, folder: Path, page: str) -> list[str]:
    """Every PNG output of an executed notebook written as ``<folder>/<page>-<k>.png``, in the order the page shows
    them; their file names. A widget's figures count as outputs of the cell that shows the widget: an interactive
    page (the explorer) keeps its figure in the widget state frozen at execution, as the static book shows it."""
    nb = json.loads(notebook.read_text())
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    seen: set = set()
    out = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            shown = _widget_outputs(state, view.get("model_id", ""), seen) if isinstance(view, dict) else [output]
            for o in shown:
                png = o.get("data", {}).get("image/png")
                if png:
                    name = f"{page}-{len(out) + 1}.png"
                    (folder / name).write_bytes(base64.b64decode("".join(png) if isinstance(png, list) else png))
                    out.append(name)
    return out


def path_free(text: str, places: dict[str, str], quoted: bool = True) -> str:
    """``text`` with every path of ``places`` (and the paths under it) named by its stand-in, the longest first (the
    run store may lie in the checkout); a longer name that starts like one (``runs2`` beside ``runs``) is left alone.
    quoted: ``text`` is JSON, where a path appears JSON-escaped."""
    for path in sorted(places, key=len, reverse=True):
        if path and path != os.sep:
            found = re.escape(json.dumps(path)[1:-1] if quoted else path) + r"(?![\w.-])"
            text = re.sub(found, lambda _, stand_in=places[path]: stand_in, text)
    return text


def make_path_free(folder: Path, places: dict[str, str], keep: tuple[str, ...] = ()) -> None:
    """Rewrite a record's notebooks and JSON files without this machine's paths (``path_free``), but for the files
    named in ``keep``; an executed notebook's papermill paths become the page's own, relative to the checkout and to
    the record."""
    for f in sorted([*folder.rglob("*.ipynb"), *folder.rglob("*.json")]):
        if f.name in keep:
            continue
        text = original = f.read_text()
        if f.suffix == ".ipynb":
            nb = json.loads(text)
            pm = nb.get("metadata", {}).get("papermill")
            if isinstance(pm, dict):
                pm["input_path"] = f"notebooks/{f.stem}.ipynb"
                pm["output_path"] = f"executed/{f.stem}.ipynb"
                text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        text = path_free(text, places)
        if text != original:
            f.write_text(text)


__all__ = ["WIDGET_STATE", "WIDGET_VIEW", "extract_figures", "path_free", "make_path_free"]
