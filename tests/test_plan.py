"""Planning the book's runs from the pages' own run functions, and training them in parallel worker processes."""

import json
import os

import pytest
import torch

from lcmae_core import configs, pages, plan, scales
from lcmae_core.experiments import Study
from lcmae_core.runs import run_or_load


def test_a_planning_study_records_configs_and_trains_nothing(tmp_path):
    planner = []
    study = Study(scale="smoke", run_root=str(tmp_path), planner=planner, verbose=False)
    runs = pages.runs_table1(study, settings="ab")
    assert study.seeds == scales.SCALES["smoke"].seeds and not any(tmp_path.iterdir())
    mae = runs["pretrained"]["b"][0]
    assert not mae.finished and mae.name in {configs.run_name(c) for c in planner}
    # the evaluations name their pretraining run and share its seed
    lp = runs["evals"]["b"][1]["lp"]
    assert lp.config["pretrain"] == runs["pretrained"]["b"][1].name and lp.config["seed"] == 1
    # finetuning is a further column at the small scales: the first seed only
    assert "ft" in runs["evals"]["b"][0] and "ft" not in runs["evals"]["b"][1]
    assert all(runs["evals"]["random"][s]["lp"].config["pretrain"] is None for s in study.seeds)


def test_seeds_are_validated_and_default_per_scale():
    assert Study(scale="cpu").seeds == (0, 1, 2) and Study(scale="paper").seeds == (0,)
    assert Study(scale="cpu", seeds=(3, 5)).seeds == (3, 5)
    for bad in ((), (1, 1), (-1,)):
        with pytest.raises(ValueError, match="seeds"):
            Study(scale="cpu", seeds=bad)
    # finetuning, the paper's metric, at every seed of the gpu scale; none at the cpu scale
    assert "ft" in Study(scale="gpu", planner=[]).evaluations({1: None})[1]
    assert all("ft" not in e for e in Study(scale="cpu", planner=[]).evaluations({0: None, 1: None}).values())


def test_plan_covers_every_page_without_duplicates(tmp_path):
    cfgs = plan.plan_runs("smoke", run_root=str(tmp_path))
    names = [configs.run_name(c) for c in cfgs]
    assert len(names) == len(set(names))
    families = {c.family for c in cfgs}
    assert families == set(configs.ALL_FAMILIES)
    # every evaluation's pretraining is in the plan, and comes before it
    for i, c in enumerate(cfgs):
        if getattr(c, "pretrain", None):
            assert c.pretrain in names[:i]
    # one page alone plans a subset
    only = plan.plan_runs("smoke", ["fig6_attention_distance_mask_ratio"], run_root=str(tmp_path))
    assert {configs.run_name(c) for c in only} < set(names) and len(only) == 5 * 2


def test_ready_order_puts_each_run_after_the_one_it_needs():
    cfgs = plan.plan_runs("smoke", ["tableA1_single_image"])
    todo = {configs.run_name(c): c for c in cfgs}
    deps = {n: c.pretrain if getattr(c, "pretrain", None) in todo else None for n, c in todo.items()}
    order = plan.ready_order(todo, deps)
    assert sorted(order) == sorted(todo)
    for n, d in deps.items():
        if d:
            assert order.index(d) < order.index(n)


def test_parallel_training_then_the_notebooks_only_load(tmp_path):
    cfgs = plan.plan_runs("smoke", ["eq2_eq4_local_contrastive", "tableA1_single_image"], run_root=str(tmp_path))
    events = []
    trained = plan.train_runs(cfgs, str(tmp_path), jobs=2, progress=False, log=events.append)
    assert set(trained) == {configs.run_name(c) for c in cfgs}
    assert all(json.loads(e)["ok"] for e in events) and len(events) == len(cfgs)
    for c in cfgs:
        assert os.path.exists(os.path.join(tmp_path, configs.run_name(c), "metrics.json"))
    # each trained run's line carries its first epoch's seconds and the others' median, as its metrics record them
    # (a solved probe has no epochs)
    timed = [e for e in map(json.loads, events) if "first_epoch_s" in e]
    assert timed and all(e["family"] != "linprobe" for e in timed)
    for e in timed:
        with open(os.path.join(tmp_path, e["run"], "metrics.json")) as f:
            m = json.load(f)
        assert (m["first_epoch_s"], m["epoch_s"]) == (e["first_epoch_s"], e["epoch_s"]) and m["epoch_s"] > 0
    # a second plan trains nothing, and a page finds every run finished
    assert plan.train_runs(cfgs, str(tmp_path), jobs=2, progress=False) == {}
    study = Study(scale="smoke", run_root=str(tmp_path), verbose=False)
    runs = pages.runs_tableA1(study)
    assert all(r.finished for e in runs["evals"].values() for s in e.values() for r in s.values())


def test_a_failed_run_stops_its_dependents_and_is_reported(tmp_path, monkeypatch):
    cfgs = plan.plan_runs("smoke", ["eq2_eq4_local_contrastive"], run_root=str(tmp_path))
    lp = configs.apply_overrides(configs.preset("linprobe", "smoke"), {"pretrain": configs.run_name(cfgs[0])})
    real = plan._train_one

    def fail_first(cfg_dict, root):
        if configs.run_name(configs.from_dict(cfg_dict)) == configs.run_name(cfgs[0]):
            raise RuntimeError("disk full")
        return real(cfg_dict, root)

    monkeypatch.setattr(plan, "_train_one", fail_first)
    with pytest.raises(plan.PlanError) as err:
        plan.train_runs([*cfgs, lp], str(tmp_path), jobs=1, progress=False, log=lambda e: None)
    msg = str(err.value)
    assert "disk full" in msg and f"its pretraining {configs.run_name(cfgs[0])} failed" in msg
    assert os.path.exists(os.path.join(tmp_path, configs.run_name(cfgs[1]), "metrics.json"))  # the other seed ran


def test_plan_cli_dry_run_and_bad_input(tmp_path, capsys):
    from lcmae_core.cli import main

    assert main(["plan", "--scale", "smoke", "--only", "fig6_attention_distance_mask_ratio", "--dry-run",
                 "--run-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 10 and all(line.split("\t")[1] == "to train" for line in out)
    assert main(["plan", "--scale", "smoke", "--jobs", "0", "--run-root", str(tmp_path)]) == 2
    assert main(["plan", "--scale", "smoke", "--only", "nope", "--run-root", str(tmp_path)]) == 2
    assert "no runs are planned for nope" in capsys.readouterr().err


def test_the_plan_takes_the_notebooks_parameters(tmp_path, capsys):
    """plan -p plans what the notebooks will ask for with the same values: another mask ratio, other seeds."""
    from lcmae_core.cli import main

    fig6 = "fig6_attention_distance_mask_ratio"
    base = ["plan", "--scale", "cpu", "--only", fig6, "--dry-run", "--run-root", str(tmp_path)]
    assert main(base) == 0
    default = capsys.readouterr().out.strip().splitlines()
    assert main(base + ["-p", "mask_ratios", "[0.9, 0.75]"]) == 0
    more = capsys.readouterr().out.strip().splitlines()
    assert len(default) == 3 and len(more) == 6 and set(default) <= set(more)  # the 0.9 runs, one per seed
    assert sorted(line.rsplit(", ", 1)[1] for line in more if "mask 0.9," in line) == ["seed 0", "seed 1", "seed 2"]
    cfgs = plan.plan_runs("cpu", [fig6], str(tmp_path), params={fig6: {"mask_ratios": [0.9, 0.75]}})
    assert sorted({c.mask_ratio for c in cfgs}) == [0.75, 0.9]
    seeds = plan.plan_runs("cpu", [fig6], str(tmp_path), params={fig6: {"seeds": [7]}})
    assert [c.seed for c in seeds] == [7]
    # the page's own function with the same values asks for exactly these runs
    planner: list = []
    pages.page_runs(fig6, Study(scale="cpu", planner=planner, verbose=False), {"mask_ratios": [0.9, 0.75]})
    assert {configs.run_name(c) for c in planner} == {configs.run_name(c) for c in cfgs}
    # a parameter no selected page takes, or of the wrong type: one line, exit 2
    assert main(base + ["-p", "settings", "[\"a\"]"]) == 2
    assert "no selected notebook takes parameter 'settings'" in capsys.readouterr().err
    assert main(base + ["-p", "mask_ratios", "0.9"]) == 2
    assert "takes a list" in capsys.readouterr().err


def test_a_notebook_never_trains_what_the_batch_planned(tmp_path, monkeypatch):
    """In a batch that planned its runs first, a run a page asks for and the plan missed fails the page, named."""
    from lcmae_core.experiments import PLANNED_ENV
    from lcmae_core.runs import RunError

    monkeypatch.setenv(PLANNED_ENV, "1")
    study = Study(scale="smoke", run_root=str(tmp_path), verbose=False)
    with pytest.raises(RunError, match="the plan and the page disagree"):
        study.mae(seed=9)
    assert not any(tmp_path.iterdir())  # nothing was trained


def test_init_model_is_the_runs_initial_weights(tmp_path, one_thread):
    from lcmae_core.train.checkpoint import load, snapshots

    cfg = configs.apply_overrides(configs.preset("mae", "smoke"), {"seed": 3})
    run = run_or_load(cfg, root=str(tmp_path))
    init = Study(scale="smoke", run_root=str(tmp_path)).init_model(run)
    snap = load(snapshots(run.dir)[0])["model"]
    assert set(snap) == set(init.state_dict())
    assert all(torch.equal(snap[k], v) for k, v in init.state_dict().items())
    trained = load(run.checkpoint)["model"]
    assert not torch.equal(trained["blocks.0.attn.qkv.weight"], init.state_dict()["blocks.0.attn.qkv.weight"])


def test_arm_and_accuracy_table_from_runs(tmp_path):
    from lcmae_core.runs import Run
    from lcmae_core.train.engine import pack_correct

    def ev(top1, knn):
        hits = pack_correct(torch.tensor([True, False, True, True]))
        return {"lp": Run("lp", "", {}, {"top1": top1, "knn_top1": knn, "correct": hits, "val_num_samples": 4})}
    evals = {0: ev(70.0, 60.0), 1: ev(72.0, 61.0), 2: ev(71.0, 59.0)}
    evals[0]["ft"] = Run("ft", "", {}, {"top1": 80.0})
    a = pages.arm("MAE", evals)
    assert a.of("lp") == [70.0, 72.0, 71.0] and a.of("knn") == [60.0, 61.0, 59.0] and a.of("ft") == [80.0]
    assert a.correct["lp"].tolist() == [True, False, True, True] and "ft" not in a.correct
    assert pages.arm("MAE", {0: ev(70.0, 60.0)}).of("ft") == []  # a scale without finetuning
    t = pages.accuracy_table({"mae": evals}, {"mae": "MAE"}, {"mae": 82.9}, {"knn": 93.3, "logreg": 88.7})
    assert t.loc["MAE", "LP"].startswith("71.0 ± ") and t.loc["MAE", "FT"] == "80.0" and t.loc["MAE", "FT seeds"] == 1
    assert t.loc["raw pixels, kNN", "kNN"] == "93.3" and t.loc["raw pixels, logistic regression", "LP"] == "88.7"
    assert pages.mean_pm([1.0]) == "1.0"


def _inductor_compile_threads() -> int:
    import torch._inductor.config as inductor

    return inductor.compile_threads


def test_each_worker_compiles_with_its_share_of_the_cores(monkeypatch):
    """Many runs side by side on one GPU each compile their kernels: a worker gets its share of the cores for that,
    not inductor's default of every core (12 workers on 16 cores would start 12 pools of 16 compiler processes)."""
    monkeypatch.setattr(plan, "usable_cores", lambda: 14)
    assert [plan.compile_threads(j) for j in (1, 2, 3, 12, 16)] == [14, 7, 4, 1, 1]
    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    with plan.worker_pool(2) as pool:
        assert pool.submit(_inductor_compile_threads).result() == 7  # inductor's default: the machine's cores


def test_workers_end_with_the_process_that_started_them(tmp_path):
    """A build killed outright (SIGKILL, or a SIGTERM it does not handle) must not leave its training workers
    running on as orphans: each worker ends within seconds of its parent."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text("import os, time\n"
                      "from lcmae_core.plan import worker_pool\n"
                      "if __name__ == '__main__':\n"
                      "    pool = worker_pool(1)\n"
                      "    print(pool.submit(os.getpid).result(), flush=True)\n"
                      "    pool.submit(time.sleep, 120)\n"
                      "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert os.path.exists(f"/proc/{worker}") or os.name != "posix"
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{worker}/stat") as f:  # reaped by init once it ends; a zombie counts as ended
            if f.read().split()[2] == "Z":
                return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"worker {worker} outlived its parent by 20 s")


def test_fig6_text_follows_the_ratios_trained():
    one = pages.fig6_text({0.75: 14.2345}, 0.7812)
    assert "only the shared baseline" in one and "0.75" in one and "14.2 pixels" in one and "0.781" in one
    three = pages.fig6_text({0.3: 12.0, 0.75: 13.5, 0.9: 15.25}, 0.8)
    assert three.index("0.9 attends over 15.2 pixels") < three.index("0.75 over 13.5") < three.index("0.3 over 12")
    assert "span 3.25 pixels" in three


def test_cpu_scale_trains_the_shared_fig6_baseline_only():
    study = Study(scale="cpu", planner=[])
    assert study.fig6_mask_ratios == (0.75,)
    assert Study(scale="gpu", planner=[]).fig6_mask_ratios == (0.9, 0.75, 0.6, 0.45, 0.3)
    runs = pages.runs_fig6(study)
    assert list(runs) == [0.75] and set(runs[0.75]) == set(study.seeds)


def test_page_measures_run_on_the_studys_device(monkeypatch):
    """Table 3's and the attention pages' encoder measures default to the study's device, not the CPU."""
    seen = {}
    monkeypatch.setattr(pages, "encoder_models_measures",
                        lambda models, inits, images, device=None: seen.setdefault("device", device))
    monkeypatch.setattr(Study, "model", lambda self, run: run)
    monkeypatch.setattr(Study, "init_model", lambda self, run: run)
    monkeypatch.setattr(configs, "check_device", lambda d: {"auto": "cuda", "cpu": "cpu"}[d])
    pages.encoder_measures(Study(scale="smoke", device="auto", planner=[]), {0: "run"}, None)
    assert seen["device"] == "cuda"
    seen.clear()
    pages.encoder_measures(Study(scale="smoke", device="auto", planner=[]), {0: "run"}, None, device="cpu")
    assert seen["device"] == "cpu"


def test_a_runs_epoch_times_are_its_first_epoch_and_the_others_median():
    from lcmae_core.train.trainer import epoch_times

    assert epoch_times([]) == {}
    assert epoch_times([4.0]) == {"first_epoch_s": 4.0, "epoch_s": 4.0}
    assert epoch_times([9.0, 1.0, 3.0, 2.0]) == {"first_epoch_s": 9.0, "epoch_s": 2.0}
    assert epoch_times([9.0, 1.0, 3.0]) == {"first_epoch_s": 9.0, "epoch_s": 2.0}
