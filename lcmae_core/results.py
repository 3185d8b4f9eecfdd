"""Results and claims: what each notebook of the book measured, and its verdict on the paper's claims.

Every notebook ends by calling ``record(...)``, which writes two files atomically into
``<results_root>/<scale>/<notebook>/``:

- ``metrics.json``: {"notebook", "scale", "hardware", "metrics", "paper", "written_at"}
- ``claims.json``:  {"notebook", "scale", "claims": [{"id", "text", "verdict", "evidence", "why", "reading",
  "precondition", "controls", "source"}, ...]}

The results page of the book reads them all back with ``load_all``. The claims are ``lcmae_core.verdicts.Claim``
records, each made by that module's function for the claim; a verdict is one of ``stats.VERDICTS``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .atomic import atomic_write_json
from .verdicts import Claim
from .runs import resolve_root
# the verdicts, which the pages read as results.HOLDS and the like
from .stats import FAILS, HOLDS, UNFORMED, UNTESTABLE, VERDICTS  # noqa: F401

METRICS_KEYS = ("notebook", "scale", "hardware", "metrics", "paper", "written_at")
CLAIMS_KEYS = ("notebook", "scale", "claims")
CLAIM_KEYS = ("id", "text", "verdict", "evidence", "why", "reading", "precondition", "controls", "source")


def hardware_info() -> dict:
    """The machine a result was computed on: CPU, cores, GPU (if any), torch version."""
    info = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version()}
    info["torch"] = torch.__version__
    info["threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
    return info


def results_root(run_root: str | os.PathLike | None = None) -> Path:
    """Where results live: ``$LCMAE_RESULTS_ROOT``, else ``<run_root>/results``, else ``./runs/results``."""
    env = os.environ.get("LCMAE_RESULTS_ROOT")
    if env:
        return Path(env)
    return Path(resolve_root(run_root)) / "results"


def record(notebook: str, scale: str, metrics: dict, claims: list[Claim], paper: dict | None = None,
           run_root: str | os.PathLike | None = None, extra: dict | None = None, table=None) -> Path:
    """Write a notebook's metrics.json and claims.json; returns their folder.

    table: the page's paper-vs-reproduced table (a pandas DataFrame, index included, or a list of row dicts);
    the results summary shows it.
    """
    folder = results_root(run_root) / scale / notebook
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if table is not None:
        table = table_record(table)
    atomic_write_json(folder / "metrics.json", {
        "notebook": notebook, "scale": scale, "hardware": hardware_info(), "metrics": metrics,
        "paper": paper or {}, "written_at": now, "table": table, **(extra or {}),
    })
    atomic_write_json(folder / "claims.json", {
        "notebook": notebook, "scale": scale, "claims": [asdict(c) for c in claims],
    })
    return folder


def table_record(table) -> dict:
    """A pandas DataFrame (its index becomes the first column) as {"columns": [...], "data": [[...], ...]},
    which keeps the column order through JSON."""
    flat = table.reset_index() if hasattr(table, "reset_index") else table
    return json.loads(flat.to_json(orient="split", index=False))


def table_frame(record: dict):
    """The DataFrame of a ``table_record``, indexed by its first column."""
    import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

    frame = pd.DataFrame(record["data"], columns=record["columns"])
    return frame.set_index(record["columns"][0])


def claims_rows(loaded: dict[str, dict]) -> list[dict]:
    """Every claim of every notebook, one row each: notebook, id, claim, verdict, why, evidence, precondition,
    null controls."""
    return [{"notebook": nb, "id": c["id"], "claim": c["text"] + (f" ({c['source']})" if c.get("source") else ""),
             "verdict": c["verdict"], "why": c.get("why", ""),
             "evidence": c["evidence"], "precondition": c.get("precondition", ""),
             "null controls": c.get("controls", "")}
            for nb, r in loaded.items() for c in r["claims"]["claims"]]


class ClaimsView:
    """A page's verdicts as the reader sees them: each claim in the paper's words, its verdict, and, in full, why,
    the evidence with its intervals, the reading, the precondition and the null controls (Markdown: it wraps to the
    page, with nothing cut short and no horizontal scrolling). ``frame`` is the same as a pandas table."""

    FIELDS = (("source", "Source"), ("why", "Why"), ("evidence", "Evidence"), ("reading", "Reading"),
              ("precondition", "Precondition"), ("controls", "Null controls"))

    def __init__(self, claims: list[Claim]):
        self.claims = list(claims)

    @property
    def frame(self):
        import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

        return pd.DataFrame([{"verdict": c.verdict, "why": c.why, "evidence": c.evidence,
                              "precondition": c.precondition, "null controls": c.controls}
                             for c in self.claims], index=pd.Index([c.id for c in self.claims], name="claim"))

    @property
    def columns(self):
        return self.frame.columns

    @property
    def index(self):
        return self.frame.index

    @property
    def loc(self):
        return self.frame.loc

    def _repr_markdown_(self) -> str:
        blocks = []
        for c in self.claims:
            lines = [f"**{c.id}**: *{c.verdict}*", "", f"> {c.text}", ""]
            lines += [f"- **{label}:** {_md(getattr(c, key))}" for key, label in self.FIELDS
                      if getattr(c, key) and getattr(c, key) != "none"]
            blocks.append("\n".join(lines))
        return "\n\n---\n\n".join(blocks) + "\n"

    def __repr__(self) -> str:
        return "\n".join(f"{c.id}: {c.verdict}. {c.why}" for c in self.claims)


def _md(text: str) -> str:
    """Plain text safe inside a Markdown list item (no stray emphasis from * or _ in the numbers)."""
    return str(text).replace("*", "\\*").replace("_", "\\_")


def claims_table(claims: list[Claim]) -> ClaimsView:
    """A page's claims for display (``ClaimsView``): in the paper's words, with verdict, why, evidence (with
    intervals), reading, precondition and null controls, in full; ``.frame`` is the pandas table."""
    return ClaimsView(claims)


def run_rows(run_root: str | os.PathLike | None = None, scale: str | None = None) -> list[dict]:
    """The finished runs of the run store (optionally of one scale): name, family, scale, device, train time."""
    base = Path(resolve_root(run_root))
    rows = []
    for f in sorted(base.glob("*/metrics.json")):
        m = json.loads(f.read_text())
        if scale is None or m.get("scale") == scale:
            rows.append({"run": f.parent.name, "family": m.get("family"), "scale": m.get("scale"),
                         "device": m.get("device_name", m.get("device")), "threads": m.get("threads"),
                         "world size": m.get("world_size"), "train time (s)": m.get("train_time_s")})
    return rows


def require_results(loaded: dict, scale: str, run_root: str | os.PathLike | None = None) -> dict:
    """``loaded`` when a page has recorded results, else a one-line error saying where none were found."""
    if not loaded:
        raise FileNotFoundError(f"no page has recorded results at scale {scale!r} under {results_root(run_root)}; "
                                f"run the book's pages first (python -m lcmae_core batch --scale {scale})")
    return loaded


def load_all(scale: str, run_root: str | os.PathLike | None = None,
             results_path: str | os.PathLike | None = None) -> dict[str, dict]:
    """{notebook: {"metrics": ..., "claims": ...}} for every notebook that recorded results at this scale, in the
    results store of ``run_root`` (``results_root``) or in the folder ``results_path`` (a record's)."""
    base = (Path(results_path) if results_path else results_root(run_root)) / scale
    out: dict[str, dict] = {}
    if not base.is_dir():
        return out
    # a page's default record only: not one set aside for a run with -p values (``<page>@p-<digest>``, see
    # ``batch.variant_record``), nor a hidden one
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and "@" not in p.name and not p.name.startswith(".")):
        m, c = folder / "metrics.json", folder / "claims.json"
        if m.is_file() and c.is_file():
            out[folder.name] = {"metrics": json.loads(m.read_text()), "claims": json.loads(c.read_text())}
    return out
