"""A run killed with SIGKILL and started again ends with weights bit-identical to an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lcmae_core.train import checkpoint as ckpt_io

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# one intra-op thread: tiny models gain nothing from more, and a shared machine punishes oversubscription
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cmd(kind, root, extra):
    return [sys.executable, "-m", "lcmae_core", kind, "--scale", "smoke", "--run-root", str(root), "--no-progress",
            *extra]


def _only_run(root):
    names = [p for p in os.listdir(root) if not p.startswith(".")]
    assert len(names) == 1, names
    return os.path.join(root, names[0])


def _kill_when(cmd, root, ready, timeout=120):
    """Start cmd, SIGKILL it as soon as ready(run_dir) holds; returns whether a checkpoint existed at the kill."""
    p = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    try:
        while time.time() - t0 < timeout:
            names = [n for n in os.listdir(root) if not n.startswith(".")] if os.path.isdir(root) else []
            if names and ready(os.path.join(root, names[0])):
                had_ckpt = os.path.exists(os.path.join(root, names[0], "checkpoint.pt"))
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                assert not os.path.exists(os.path.join(root, names[0], "metrics.json")), "finished before the kill"
                return had_ckpt
            if p.poll() is not None:
                pytest.fail("the run ended before it could be killed")
            time.sleep(0.005)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    pytest.fail("never reached the kill point")


def _weights(run_dir):
    return ckpt_io.load(os.path.join(run_dir, "checkpoint.pt"))


def _assert_identical(a, b):
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"]


def _epoch_done(run_dir):
    return os.path.exists(os.path.join(run_dir, "checkpoint.pt"))


def _started(run_dir):
    return os.path.exists(os.path.join(run_dir, "log.jsonl"))


CASES = {
    # LC-MAE: two random masks per image, RandomResizedCrop, dataset order
    "lcmae": ("pretrain", ["--family", "lcmae", "--set", "optim.epochs=6", "data.limit=384", "knn=false"]),
    # finetuning with mixup/cutmix (numpy RNG), RandAugment and random erasing (python and torch RNG), drop path
    "finetune": ("finetune", ["--family", "none", "--set", "optim.epochs=6", "data.limit=384", "mixup=0.8",
                              "cutmix=1.0", "randaug=rand-m9-mstd0.5-inc1", "reprob=0.25", "data.augment=pil"]),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The final weights of each case's run made in one go, trained once for the tests that kill it (by case)."""
    made = {}

    def of(case):
        if case not in made:
            kind, extra = CASES[case]
            root = tmp_path_factory.mktemp(f"clean-{case}")
            subprocess.run(_cmd(kind, root, extra), cwd=REPO, env=ENV, check=True, stdout=subprocess.DEVNULL)
            made[case] = _weights(_only_run(root))
        return made[case]
    return of


@pytest.mark.parametrize("case", ["lcmae", "finetune"])
def test_sigkill_after_a_checkpoint_resumes_bit_identically(tmp_path, case, uninterrupted):
    kind, extra = CASES[case]
    reference = uninterrupted(case)

    root = tmp_path / "killed"
    assert _kill_when(_cmd(kind, root, extra), root, _epoch_done)
    assert _weights(_only_run(root))["epoch"] < reference["epoch"]
    subprocess.run(_cmd(kind, root, extra), cwd=REPO, env=ENV, check=True, stdout=subprocess.DEVNULL)
    _assert_identical(_weights(_only_run(root)), reference)
    events = [line for line in open(os.path.join(_only_run(root), "log.jsonl")) if '"resume"' in line]
    assert len(events) == 1


def test_sigkill_before_any_checkpoint_restarts_cleanly(tmp_path, uninterrupted):
    kind, extra = CASES["lcmae"]
    reference = uninterrupted("lcmae")
    root = tmp_path / "killed"
    assert not _kill_when(_cmd(kind, root, extra), root, _started)
    subprocess.run(_cmd(kind, root, extra), cwd=REPO, env=ENV, check=True, stdout=subprocess.DEVNULL)
    _assert_identical(_weights(_only_run(root)), reference)
