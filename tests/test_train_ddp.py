"""Distributed training: torchrun with 2 gloo processes on CPU, and the submitit launcher (LocalExecutor)."""

import os

import pytest

from lcmae_core import configs, runs
from lcmae_core.train import checkpoint as ckpt_io

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_thread_per_process(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_torchrun_two_gloo_processes(tmp_path):
    # setting (c): L_cross alone leaves the prediction head without gradient: DDP must cope with unused parameters
    cfg = configs.apply_overrides(configs.preset("lcmae", "smoke"),
                                  ["progress=false", "model.setting=c", "optim.epochs=2", "knn=true"])
    run = runs.run_or_load(cfg, launcher="torchrun", root=str(tmp_path), nproc_per_node=2)
    m = run.metrics
    assert m["world_size"] == 2
    assert m["steps"] == 2 * (256 // 64)  # the global batch is split over the two processes
    log = run.read_log()
    starts = [r for r in log if r["event"] == "start"]
    assert len(starts) == 1 and starts[0]["micro_batch"] == 32  # rank 0 alone writes
    assert len([r for r in log if r["event"] == "epoch"]) == 2
    ck = ckpt_io.load(run.checkpoint)
    assert ck["epoch"] == 2 and not any(k.startswith("module.") for k in ck["model"])
    assert 0 <= m["knn_top1"] <= 100 and m["final_effective_rank"] >= 1
    # a second call finds it finished
    assert runs.run_or_load(cfg, launcher="torchrun", root=str(tmp_path), nproc_per_node=2).metrics == m


def test_rank_shards_cover_the_data_once_per_epoch():
    from lcmae_core.train.distributed import EpochSampler
    shards = []
    for r in range(2):
        s = EpochSampler(10, seed=0, rank=r, world=2)
        s.set_epoch(3)
        shards.append(list(s))
    assert len(shards[0]) == len(shards[1]) == 5 and sorted(shards[0] + shards[1]) == list(range(10))
    s = EpochSampler(10, seed=0)
    s.set_epoch(3)
    a = list(s)
    s.set_epoch(4)
    assert a != list(s)
    s.set_epoch(3)
    assert a == list(s)  # a pure function of (seed, epoch)


def test_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    cfg = configs.apply_overrides(configs.preset("mae", "smoke"), ["progress=false", "knn=false"])
    run = runs.run_or_load(cfg, launcher="slurm", root=str(tmp_path), executor="local",
                           slurm={"time_min": 10, "tasks_per_node": 2})
    # two tasks: the job sets up torch.distributed from submitit's environment, as on a SLURM node
    assert run.finished and run.metrics["family"] == "mae" and run.metrics["world_size"] == 2
    assert os.path.isdir(os.path.join(str(tmp_path), ".slurm", run.name))
