"""Weight snapshots over training (``snapshot_every``) and the collapse monitors on the decoder hidden state h.

Snapshots serve the Sec. 3.2 page, which measures the terms of Eq. 2 / Eq. 4 at several points of one run:
snapshot-epoch0.pt is the initialisation, snapshot-epoch{N}.pt the weights after N epochs, and the last one equals
the final checkpoint. ``snapshot_every`` is not hashed, so turning it on does not make a new run.
"""

import pytest
import torch

from lcmae_core import configs, runs
from lcmae_core.reference_models import load_run
from lcmae_core.train import checkpoint as ckpt_io


@pytest.fixture(scope="module")
def lcmae_run(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = configs.apply_overrides(configs.preset("lcmae", "smoke"), [
            "progress=false", "optim.epochs=2", "knn=false", "data.limit=128"])
        yield runs.run_or_load(cfg, root=str(tmp_path_factory.mktemp("runs")))
    finally:
        torch.set_num_threads(n)


def test_snapshot_every_is_not_hashed_and_checked():
    cfg = configs.preset("mae", "cpu")
    assert cfg.snapshot_every == 1  # the small-scale pretraining presets keep every epoch
    off = configs.apply_overrides(cfg, ["snapshot_every=0"])
    assert configs.config_hash(off) == configs.config_hash(cfg)
    assert configs.preset("finetune", "cpu").snapshot_every == 0
    with pytest.raises(configs.ConfigError, match="snapshot_every"):
        configs.validate(configs.apply_overrides(cfg, ["snapshot_every=-1"]))


def test_snapshots_at_every_epoch_and_the_last_is_the_checkpoint(lcmae_run):
    snaps = ckpt_io.snapshots(lcmae_run.dir)
    assert list(snaps) == [0, 1, 2]
    final = ckpt_io.load(lcmae_run.checkpoint)
    for epoch, path in snaps.items():
        ck = ckpt_io.load(path)  # weights_only
        assert set(ck) == {"model", "config", "num_classes", "epoch", "step"} and ck["epoch"] == epoch
        model, _ = load_run(path)  # the analysis loader reads a snapshot like a checkpoint
        assert type(model).__name__ == "LCMAE"
    last, init = ckpt_io.load(snaps[2])["model"], ckpt_io.load(snaps[0])["model"]
    assert all(torch.equal(last[k], final["model"][k]) for k in last)
    assert not all(torch.equal(init[k], last[k]) for k in last)
    assert ckpt_io.load(snaps[0])["step"] == 0 and ckpt_io.load(snaps[2])["step"] == final["step"]


def test_collapse_monitors_watch_v_and_h(lcmae_run):
    rec = [r for r in lcmae_run.read_log() if r["event"] == "train"][0]
    assert {"feature_std", "effective_rank", "hidden_feature_std", "hidden_effective_rank"} <= set(rec)
    m = lcmae_run.metrics
    assert m["final_hidden_effective_rank"] >= 1 and m["final_hidden_feature_std"] > 0
    dim = lcmae_run.config["model"]["decoder_embed_dim"]
    assert m["final_hidden_uniform_std"] == pytest.approx(dim ** -0.5)
    assert m["final_uniform_std"] == pytest.approx(lcmae_run.config["model"]["proj_dim"] ** -0.5)
