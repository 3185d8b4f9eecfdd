"""The run store: naming, reuse without retraining, the root's resolution, locking, atomic metrics."""

import json
import os
import threading

import pytest

from lcmae_core import configs, runs



pytestmark = pytest.mark.usefixtures("one_thread")

def _cfg(*extra):
    return configs.apply_overrides(configs.preset("mae", "smoke"),
                                   ["progress=false", "knn=false", "data.limit=128", *extra])


def test_second_call_reuses_the_finished_run(tmp_path):
    cfg = _cfg()
    a = runs.run_or_load(cfg, root=str(tmp_path))
    assert a.dir == os.path.join(str(tmp_path), configs.run_name(cfg))
    assert sorted(f for f in os.listdir(a.dir)) == ["checkpoint.pt", "config.json", "log.jsonl", "metrics.json",
                                                    "snapshot-epoch0.pt", "snapshot-epoch1.pt"]  # snapshot_every=1
    stamp = os.stat(a.checkpoint).st_mtime_ns
    n_log = len(a.read_log())
    b = runs.run_or_load(cfg, root=str(tmp_path))
    assert b.metrics == a.metrics and os.stat(b.checkpoint).st_mtime_ns == stamp and len(b.read_log()) == n_log
    assert configs.from_dict(b.config) == cfg
    assert runs.find_run(a.name, str(tmp_path)).finished


def test_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LCMAE_RUN_ROOT", str(tmp_path / "envroot"))
    assert runs.resolve_root() == str(tmp_path / "envroot")
    assert runs.resolve_root(str(tmp_path / "arg")) == str(tmp_path / "arg")
    monkeypatch.delenv("LCMAE_RUN_ROOT")
    # in a source checkout: its runs/, whatever the working directory (JupyterLab runs notebooks in notebooks/)
    top = runs.checkout_dir()
    assert top is not None and os.path.isfile(os.path.join(top, "lcmae_core", "runs.py"))
    monkeypatch.chdir(tmp_path)
    assert runs.resolve_root() == os.path.join(top, "runs")
    monkeypatch.chdir(os.path.join(top, "notebooks"))
    assert runs.resolve_root() == os.path.join(top, "runs")
    # an installed package (no checkout around it): ./runs of the working directory
    monkeypatch.setattr(runs, "checkout_dir", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert runs.resolve_root() == str(tmp_path / "runs")


def test_two_callers_train_once(tmp_path):
    cfg = _cfg("seed=3")
    results, errors = [], []

    def call():
        try:
            results.append(runs.run_or_load(cfg, root=str(tmp_path)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2
    assert results[0].metrics == results[1].metrics
    events = [r["event"] for r in results[0].read_log()]
    assert events.count("start") == 1 and "resume" not in events and events.count("final") == 1


def test_lock_excludes_other_holders(tmp_path):
    import fcntl
    with runs.run_lock(str(tmp_path), "x"):
        with open(tmp_path / ".locks" / "x.lock", "a+") as f:
            with pytest.raises(BlockingIOError):
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / ".locks" / "x.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again


def test_finetune_needs_a_finished_pretraining_run(tmp_path):
    cfg = configs.apply_overrides(configs.preset("finetune", "smoke"), ["pretrain=mae-000000000000"])
    with pytest.raises(runs.RunError, match="no run 'mae-000000000000'"):
        runs.run_or_load(cfg, root=str(tmp_path))
    assert not [p for p in os.listdir(tmp_path) if not p.startswith(".")]


def test_failed_run_leaves_no_folder(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(runs, "fit", boom)  # the run store's trainer (train.trainer.fit)
    with pytest.raises(RuntimeError, match="boom"):
        runs.run_or_load(_cfg("seed=5"), root=str(tmp_path))
    assert not [p for p in os.listdir(tmp_path) if not p.startswith(".")]


def test_atomic_json_writes_tensors_and_paths(tmp_path):
    import numpy as np
    import torch

    from lcmae_core.atomic import atomic_write_json

    p = tmp_path / "m.json"
    atomic_write_json(p, {"a": 1, "t": torch.tensor(2.5), "n": np.float32(1.5), "arr": np.arange(2), "path": p})
    assert json.loads(p.read_text()) == {"a": 1, "t": 2.5, "n": 1.5, "arr": [0, 1], "path": str(p)}
    assert os.listdir(tmp_path) == ["m.json"]


def test_threads_setting_applies_to_the_run_only(tmp_path):
    import torch
    before = torch.get_num_threads()
    run = runs.run_or_load(_cfg("seed=9", "threads=2"), root=str(tmp_path))
    assert run.metrics["threads"] == 2 and torch.get_num_threads() == before
