"""What the cpu-scale build trains, what that costs, and what each cut made for its budget saved: measured.

``make book`` from scratch must fit in ``BUDGET_MINUTES`` on 2 cores. The attention pages' recipe is fixed by the
calibration (``lcmae_core.calibration``: the cheapest recipe in which the mechanisms form), so the budget is met by
cutting elsewhere (``CUTS``: the digits' pretraining epochs, the comparison models' epochs, Fig. 6's extra mask
ratios). This module prices both from real runs:

- ``page_costs(roots)``: every run the build plans (``plan.plan_by_page``), by the page that first asks for it, with the
  one-thread CPU seconds its ``metrics.json`` recorded in any of the run stores ``roots``;
- ``cut_costs(roots)``: for each cut, the runs it removed (or the longer runs it replaced), priced the same way: the
  runs of the recipe before the cut, found by their config hash in a store that trained them.

``python -m lcmae_core.budget --runs ROOT [ROOT ...] --out bench/results/cpu_scale_budget.json`` writes both; the
appendix "Choosing the cpu scale" shows the table, and a test checks that its runs are still the ones the build
plans. A run no store holds is listed as missing, never guessed; ``--keep TABLE`` keeps an earlier table's price of
the runs before a cut when they are the same runs (their config hashes) and no store given holds them.
"""

from __future__ import annotations

import json
import os
import platform
import sys

import torch

from . import configs, scales
from .errors import OneLineParser, interruptible
from .atomic import atomic_write_json
from .calibration import committed_path, read_committed
from .experiments import Study
from .plan import plan_by_page, plan_runs

BUDGET_MINUTES = 25
JOBS = 2  # the machine the budget is set for: 2 cores, one thread per run

# the recipe before each cut, as overrides on the runs the build plans now ("where": which planned runs)
CUTS = {
    "digits-5ep": ("the digits' pretrainings at 5 epochs (1 warming up) instead of 2",
                   {"optim.epochs": 5, "optim.warmup_epochs": 1}),
    "simclr-4ep": ("the contrastive model of Fig. 5 at 4 epochs (1 warming up) instead of 2",
                   {"optim.epochs": 4, "optim.warmup_epochs": 1}),
    "supervised-5ep": ("the supervised ViT of Figs. 3 and 5 at 5 epochs instead of 2", {"optim.epochs": 5}),
    "fig6-0.9": ("Fig. 6's MAE at mask ratio 0.9, every seed", {"mask_ratio": 0.9}),
    "fig6-0.3": ("Fig. 6's MAE at mask ratio 0.3, every seed", {"mask_ratio": 0.3}),
}


def _is_digits_pretraining(cfg) -> bool:
    return cfg.family in ("mae", "lcmae", "ae") and cfg.data.dataset != "photos"


def _cut_targets(name: str, planned: list, scale: str) -> list:
    """The planned runs a cut applies to (Fig. 6's ratios: the attention pages' MAE at 0.75, one per seed)."""
    if name == "digits-5ep":
        return [c for c in planned if _is_digits_pretraining(c)]
    if name == "simclr-4ep":
        return [c for c in planned if c.family == "simclr"]
    if name == "supervised-5ep":
        return [c for c in planned if c.family == "finetune" and c.data.dataset == "photo_ids"]
    rec: list = []
    a = Study(scale=scale, planner=rec, verbose=False).for_attention()
    for s in a.seeds:
        a.attention_mae(seed=s)
    return rec


def measured_seconds(name: str, roots) -> float | None:
    """The one-thread CPU seconds a run's training took (``train_cpu_time_s``), from the first store holding it."""
    for root in roots:
        path = os.path.join(root, name, "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                m = json.load(f)
            if "train_cpu_time_s" in m:
                return float(m["train_cpu_time_s"])
    return None


def _priced(names, roots) -> dict:
    secs = {n: measured_seconds(n, roots) for n in names}
    have = [s for s in secs.values() if s is not None]
    return {"runs": len(secs), "core_s": round(sum(have), 1),
            "missing": sorted(n for n, s in secs.items() if s is None)}


def page_costs(roots, planned: list) -> list[dict]:
    """Per page: its runs (those no earlier page asked for; ``planned``: ``plan.plan_by_page``), their measured
    core-seconds, and any missing."""
    by_page: dict[str, list[str]] = {}
    for page, cfg in planned:
        by_page.setdefault(page, []).append(configs.run_name(cfg))
    return [{"page": page, **_priced(names, roots), "run_names": names} for page, names in by_page.items()]


def cut_costs(roots, planned: list, scale: str = "cpu", previous: dict | None = None) -> list[dict]:
    """Per cut: the runs of the recipe before it and their measured core-seconds, beside the runs that replaced
    them now (none where the cut dropped them). previous: an earlier table, whose price of a cut's runs before it
    is kept where no store here holds them and they are still the same runs (the same config hashes): its whole row,
    so that the runs before and after a cut are priced on the same day (the machine's speed varies between days)."""
    kept = {c["cut"]: c for c in (previous or {}).get("cuts", []) if not c.get("missing")}
    planned = [cfg for _, cfg in planned]
    names_now = {configs.run_name(c) for c in planned}
    rows = []
    for name, (what, overrides) in CUTS.items():
        targets = _cut_targets(name, planned, scale)
        before = [configs.run_name(configs.apply_overrides(c, overrides)) for c in targets]
        # Fig. 6's cuts dropped their runs; the others replaced them by the shorter runs planned now
        now = [] if name.startswith("fig6") else [configs.run_name(c) for c in targets
                                                  if configs.run_name(c) in names_now]
        b, n = _priced(before, roots), _priced(now, roots)
        old = kept.get(name)
        if b["missing"] and old and old["run_names_before"] == before:
            # the same runs as the earlier table priced: keep its whole row, both sides measured on one day
            rows.append({**old, "kept_from_earlier_table": True})
            continue
        rows.append({"cut": name, "what": what, "runs_before": b["runs"], "core_s_before": b["core_s"],
                     "runs_now": n["runs"], "core_s_now": n["core_s"],
                     "saved_core_s": round(b["core_s"] - n["core_s"], 1),
                     "missing": b["missing"] + n["missing"], "run_names_before": before})
    return rows


def budget_table(roots, scale: str = "cpu", previous: dict | None = None) -> dict:
    planned = plan_by_page(scale)
    pages = page_costs(roots, planned)
    cuts = cut_costs(roots, planned, scale, previous)
    total = round(sum(p["core_s"] for p in pages), 1)
    return {"scale": scale, "budget_minutes": BUDGET_MINUTES, "jobs": JOBS, "pages": pages, "cuts": cuts,
            "total_core_s": total, "runs": sum(p["runs"] for p in pages),
            "saved_core_s": round(sum(c["saved_core_s"] for c in cuts), 1),
            "hardware": f"{platform.machine()}, torch {torch.__version__}, one thread per run"}


def default_path() -> str:
    return committed_path("cpu_scale_budget.json")


def read_table(path: str | None = None) -> dict:
    return read_committed(path or default_path(), "budget table",
                          "python -m lcmae_core.budget --runs <run store of a cpu build>", {"pages", "cuts"})


def plan_agrees(table: dict, scale: str = "cpu") -> tuple[bool, str]:
    """Are the table's runs the ones the build plans now? (False: configs changed since it was measured.)"""
    now = {configs.run_name(cfg) for cfg in plan_runs(scale)}
    then = {n for p in table["pages"] for n in p["run_names"]}
    if now == then:
        return True, f"the table prices the {len(now)} runs the build plans"
    return False, (f"the table prices other runs than the build plans ({len(now - then)} new, {len(then - now)} "
                   f"gone): rerun python -m lcmae_core.budget after a cpu build")


def plan_check(table: dict, scale: str) -> tuple[bool | None, str]:
    """``plan_agrees`` at the scale the committed tables describe; elsewhere (None, why not)."""
    if not scales.get(scale).committed_tables:
        return None, "not checked at this scale"
    return plan_agrees(table, scale)


def frames(table: dict):
    """The appendix's two tables: per page, and per cut (core-minutes)."""
    import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

    pages = pd.DataFrame([{"page": p["page"], "runs": p["runs"], "core-minutes": round(p["core_s"] / 60, 1)}
                          for p in table["pages"]]).set_index("page")
    cuts = pd.DataFrame([{"cut": c["what"], "runs before": c["runs_before"],
                          "core-minutes before": round(c["core_s_before"] / 60, 1), "runs now": c["runs_now"],
                          "core-minutes now": round(c["core_s_now"] / 60, 1),
                          "saved": round(c["saved_core_s"] / 60, 1)} for c in table["cuts"]]).set_index("cut")
    return pages, cuts


def budget_text(table: dict) -> str:
    """The appendix's sentence: what the build trains against the budget, and what the cuts saved."""
    total, saved = table["total_core_s"] / 60, table["saved_core_s"] / 60
    missing = sum(len(p["missing"]) for p in table["pages"]) + sum(len(c["missing"]) for c in table["cuts"])
    text = (f"The build trains {table['runs']} runs, {total:.0f} core-minutes of one thread, so at least "
            f"{total / table['jobs']:.0f} minutes on {table['jobs']} cores before its notebooks run, against a "
            f"budget of {table['budget_minutes']} minutes for the whole build. Before the cuts below it trained "
            f"{total + saved:.0f} core-minutes: they saved {saved:.0f}.")
    if missing:
        text += f" {missing} run(s) were not in the stores measured and are not counted."
    kept = [c["cut"] for c in table["cuts"] if c.get("kept_from_earlier_table")]
    if kept:
        text += (f" The savings of {len(kept)} cut(s) were measured on an earlier build, whose runs before and after "
                 "each cut are the ones the code names now; the machine's speed varies between days.")
    return text


@interruptible
def main(argv=None) -> int:
    p = OneLineParser(prog="python -m lcmae_core.budget", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", required=True, help="run stores holding the measured runs (a cpu build's, "
                   "and one with the runs of the recipes before the cuts)")
    p.add_argument("--out", required=True, help="the JSON table to write")
    p.add_argument("--scale", default="cpu", choices=("smoke", "cpu"))
    p.add_argument("--keep", metavar="TABLE", help="an earlier table (e.g. the committed one) whose measured price of "
                   "the runs before each cut is kept where no store given holds them and their configs are unchanged")
    args = p.parse_args(argv)
    for root in args.runs:
        if not os.path.isdir(root):
            print(f"error: no run store at {root}; pass the runs/ folder of a build", file=sys.stderr)
            return 2
    previous = read_table(args.keep) if args.keep else None
    table = budget_table(args.runs, args.scale, previous)
    atomic_write_json(args.out, table)
    print(budget_text(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
