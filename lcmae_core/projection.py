"""How long a record would train, read before device time goes on it: the record at a scale (or a part of it)
priced at a calibration's measured pace (``project``), whether it fits the time left (``fits``), and the part of it
that does (``next_part``). ``python -m lcmae_core.testability --project`` is the command line.
"""

from __future__ import annotations

from .configs import run_name
from .plan import cost, plan_runs
from .runs import is_finished


def project(table: dict, scale: str | None = None, jobs: int = 1, notebooks: list[str] | None = None,
            run_root: str | None = None, planned: list | None = None) -> dict:
    """How long the record at ``scale`` (default: the table's; of ``notebooks`` alone, a part of it, where given)
    would train on the machine that made ``table`` (``planned``: those runs' configs, where the caller planned them):
    a rough estimate, read before spending device time on it. The planner's relative costs (``plan.cost``, measured
    on the CPU) of the record's runs that the calibration did not already train (the record reuses the rest from the
    same run store), times this machine's measured pace (the calibration runs' training seconds per unit of planned
    cost), over ``jobs`` workers packed perfectly: a lower bound on the wall time of the training, without the
    notebooks' execution. With ``run_root``, the runs already trained are those finished in that store instead (a
    later session's, which holds none of the calibration's). {"planned_runs", "already_trained", "pace_s_per_cost",
    "train_s", "jobs", "wall_s"}."""
    measured = {n: r for row in table["candidates"].values() for n, r in row.get("runs", {}).items()}
    spent = sum(r["cost"] for r in measured.values())
    if not measured or spent <= 0:
        raise ValueError("the calibration table holds no run's seconds and cost (made before they were recorded); "
                         "calibrate again to project the record")
    pace = sum(r["seconds"] for r in measured.values()) / spent
    planned = plan_runs(scale or table["scale"], notebooks) if planned is None else planned
    todo = [c for c in planned if (not is_finished(c, run_root) if run_root else run_name(c) not in measured)]
    train_s = pace * sum(cost(c) for c in todo)
    return {"planned_runs": len(planned), "already_trained": len(planned) - len(todo), "pace_s_per_cost":
            round(pace, 4), "train_s": round(train_s, 1), "jobs": jobs, "wall_s": round(train_s / jobs, 1)}


# The projection is a lower bound (training only, the workers packed perfectly; no notebook, no compilation outside
# the runs' own seconds): a record is started only where it fits this many times over in the time left. Declared
# before any GPU record ran; the first record's wall time against its projection is the check of it.
PROJECTION_MARGIN = 1.5


def fits(projection: dict, seconds_left: float, margin: float = PROJECTION_MARGIN) -> tuple[bool, str]:
    """Would the record projected by ``project`` end within ``seconds_left``, with ``margin``? (fits, one line)"""
    need = margin * projection["wall_s"]
    if need <= seconds_left:
        return True, f"the record's projected training, {projection['wall_s']:.0f} s x {margin:g}, fits the " \
                     f"{seconds_left:.0f} s left"
    return False, (f"stopped: the record's projected training ({projection['wall_s']:.0f} s over "
                   f"{projection['jobs']} workers, x {margin:g} for what the projection leaves out) would not end "
                   f"within the {seconds_left:.0f} s left; the calibration is kept: make the record in a session "
                   "with that much time (bench/gpu_record.sh record), or by parts (PAGES=auto)")


def next_part(table: dict, scale: str, jobs: int, seconds_left: float, held=(), run_root: str | None = None,
              margin: float = PROJECTION_MARGIN) -> tuple[list[str], dict | None]:
    """The record's next part (``record --only``) for a session with ``seconds_left``: of the book's pages not
    ``held`` yet, cheapest first (each one's projected training alone, ``project``), every page whose addition keeps
    the projected training of the part within the time (``fits``), in the book's order; (pages, their projection),
    ([], None) where not even the cheapest page that trains fits. Pages that train nothing go with any part; the
    closing pages (``batch.LAST``) are left to ``records.make_record``, which adds them to the part that completes
    the record."""
    from .batch import LAST, list_notebooks  # lazy: the batch's own imports

    book = [n for n in list_notebooks() if n not in LAST]
    todo = [n for n in book if n not in set(held)]
    runs = {n: {run_name(c): c for c in plan_runs(scale, [n])} for n in [*todo, *LAST]}  # each page planned once

    def of(pages):  # the part that completes the record trains the closing pages' runs too
        with_last = [*pages, *LAST] if set(book) <= set(held) | set(pages) else pages
        return project(table, scale, jobs, with_last, run_root,
                       list({k: c for n in with_last for k, c in runs[n].items()}.values()))

    alone = {n: of([n])["wall_s"] for n in todo}
    part, projection = [], None
    for n in sorted(todo, key=lambda n: alone[n]):
        trial = of([*part, n])
        if fits(trial, seconds_left, margin)[0]:
            part, projection = [*part, n], trial
    if any(alone.values()) and not any(alone[n] for n in part):  # only pages that train nothing: no part
        return [], None
    return [n for n in todo if n in part], projection


__all__ = ["project", "PROJECTION_MARGIN", "fits", "next_part"]
