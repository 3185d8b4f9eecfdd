"""What the three screens of a reference scale share (``locality_screen.py``, ``comparison_screen.py``,
``probe_screen.py``): their command line, and a table that a later seed merges into rather than overwrites."""

from __future__ import annotations

import argparse
import json
import os

from lcmae_core.atomic import atomic_write_text


def parser(doc: str, *, no_train: str, merge: str, candidate: bool = True, device: bool = True
           ) -> argparse.ArgumentParser:
    """The options every screen takes; ``no_train`` and ``merge`` say what those two do for this screen. With
    ``candidate``, ``--candidate`` names a calibration candidate of the scale; with ``device``, ``--device``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--scale", default="gpu")
    if candidate:
        p.add_argument("--candidate", default=None,
                       help="a calibration candidate of the scale (default: the scale's recipe, no candidate's changes)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--run-root", default=None)
    if device:
        p.add_argument("--device", default="cpu")
    p.add_argument("--no-train", action="store_true", help=f"train nothing: {no_train}")
    p.add_argument("--merge", action="store_true", help=f"keep the rows --out already holds ({merge}) and add or "
                                                        "replace these")
    return p


def earlier_rows(out: str, key: str, merge: bool) -> dict:
    """The rows of the table at ``out`` under ``key``, where ``merge`` keeps them; else none."""
    if not (merge and os.path.exists(out)):
        return {}
    with open(out) as f:
        return json.load(f)[key]


def write_table(out: str, scale: str, key: str, rows: dict, **fields) -> None:
    """The table, atomically: the scale, the seeds its rows hold, ``fields`` and the rows under ``key``."""
    seeds = sorted({r.get("seed", 0) for r in rows.values()})
    atomic_write_text(out, json.dumps({"scale": scale, "seeds": seeds, **fields, key: rows}, indent=1) + "\n")
