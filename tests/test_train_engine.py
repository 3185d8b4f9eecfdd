"""The training engine: schedule, layer decay, the non-finite guard, every family at smoke scale, loss falls."""

import math

import pytest
import torch
import torch.nn as nn

from lcmae_core import configs, runs
from lcmae_core.models import build_model
from lcmae_core.train import checkpoint as ckpt_io
from lcmae_core.train.engine import NonFiniteLoss, knn_classify, train_one_epoch
from lcmae_core.train.schedule import lr_at



pytestmark = pytest.mark.usefixtures("one_thread")

def test_lr_schedule_matches_its_formula():
    lr, E, W, lo = 1e-3, 10, 2, 1e-5
    assert lr_at(0.0, lr, E, W, lo) == 0.0
    assert lr_at(1.0, lr, E, W, lo) == pytest.approx(lr / 2)
    assert lr_at(W, lr, E, W, lo) == pytest.approx(lr)
    for e in (2.5, 4.0, 7.25, 9.99):
        want = lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * (e - W) / (E - W)))
        assert lr_at(e, lr, E, W, lo) == pytest.approx(want)
    assert lr_at(E, lr, E, W, lo) == pytest.approx(lo)
    # it moves within an epoch: set per iteration from a fractional epoch
    assert lr_at(0.25, lr, E, W, lo) < lr_at(0.5, lr, E, W, lo)


def test_layer_decay_groups_follow_fb_mae():
    from timm.models.vision_transformer import VisionTransformer
    from timm.optim import create_optimizer_v2
    depth, ld = 4, 0.75
    vit = VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=depth, num_heads=2, num_classes=5,
                            global_pool="avg")
    opt = create_optimizer_v2(vit, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=ld)
    scale_of = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in vit.named_parameters():
        if name.startswith(("cls_token", "pos_embed", "patch_embed")):
            layer_id = 0
        elif name.startswith("blocks."):
            layer_id = int(name.split(".")[1]) + 1
        else:
            layer_id = depth + 1
        assert scale_of[id(p)] == pytest.approx(ld ** (depth + 1 - layer_id)), name
        no_wd = p.ndim == 1 or name in ("cls_token", "pos_embed")
        assert decay_of[id(p)] == (0.0 if no_wd else 0.05), name


def test_pretrain_optimizer_skips_decay_on_norms_biases_and_tokens():
    cfg = configs.preset("mae", "smoke")
    model = build_model(cfg)
    from timm.optim import create_optimizer_v2
    opt = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        if p.requires_grad:
            expect = 0.0 if (p.ndim == 1 or name in ("cls_token", "mask_token")) else 0.05
            assert decay_of[id(p)] == expect, name
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


class _NaNAt(nn.Module):
    def __init__(self, at):
        super().__init__()
        self.w, self.calls, self.at = nn.Parameter(torch.ones(1)), 0, at

    def forward(self, imgs, labels):
        self.calls += 1
        loss = ((self.w * imgs.mean()) ** 2).sum()
        return {"loss": loss * float("nan") if self.calls > self.at else loss}


def test_non_finite_loss_names_its_step_and_checkpoint():
    obj = _NaNAt(at=3)
    loader = [(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))] * 8
    opt = torch.optim.SGD(obj.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLoss, match=r"step 3 .*last good checkpoint is /x/ck.pt"):
        train_one_epoch(obj, loader, opt, epoch=0, lr_fn=lambda e: 0.1, device=torch.device("cpu"),
                        log_every=5, progress=False, last_checkpoint="/x/ck.pt")


def test_gradient_accumulation_steps_once_per_accum():
    obj = _NaNAt(at=10**9)
    loader = [(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))] * 6
    opt = torch.optim.SGD(obj.parameters(), lr=0.1)
    out = train_one_epoch(obj, loader, opt, epoch=0, lr_fn=lambda e: 0.1, device=torch.device("cpu"),
                          accum_iter=3, progress=False)
    assert out["steps"] == 2


def test_knn_is_weighted_by_similarity():
    tr = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    ytr = torch.tensor([0, 0, 1])
    te = torch.tensor([[1.0, 0.05], [0.05, 1.0]])
    res = knn_classify(tr, ytr, te, torch.tensor([0, 1]), k=3, temperature=0.07, num_classes=2)
    assert res["knn_top1"] == 100.0
    res = knn_classify(tr, ytr, te, torch.tensor([1, 0]), k=3, temperature=0.07, num_classes=2)
    assert res["knn_top1"] == 0.0


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Every family at smoke scale, sharing one run root."""
    root = str(tmp_path_factory.mktemp("runs"))
    out = {}
    for fam in ("mae", "lcmae", "ae", "simclr"):
        cfg = configs.apply_overrides(configs.preset(fam, "smoke"), ["progress=false", "knn=true"])
        out[fam] = runs.run_or_load(cfg, root=root)
    for fam in ("finetune", "linprobe"):
        cfg = configs.apply_overrides(configs.preset(fam, "smoke"), ["progress=false", f"pretrain={out['mae'].name}"])
        out[fam] = runs.run_or_load(cfg, root=root)
    cfg = configs.apply_overrides(configs.preset("finetune", "smoke"), ["progress=false"])
    out["random"] = runs.run_or_load(cfg, root=root)
    return root, out


@pytest.mark.parametrize("family", ["mae", "lcmae", "ae", "simclr", "finetune", "linprobe", "random"])
def test_every_family_trains_at_smoke_scale(smoke_runs, family):
    _, out = smoke_runs
    run = out[family]
    assert run.finished and math.isfinite(run.metrics["train_loss"])
    ck = ckpt_io.load(run.checkpoint)  # weights_only
    solved = family == "linprobe"  # the smoke probe is solved in one call (train.probe), not trained in epochs
    assert set(ck) >= {"model", "config", "num_classes", "epoch", "step"} | (set() if solved else {"optimizer", "rng"})
    assert "run_config" not in ck and ck["config"] == run.config  # one record of the run, as its config.json
    events = [r["event"] for r in run.read_log()]
    assert events[0] == "start" and events[-1] == "final" and ("train" in events) != solved
    if solved:
        assert run.metrics["probe"] == "logreg" and run.metrics["probe_converged"] and run.metrics["steps"] == 0
    from lcmae_core.models import build_from_kwargs
    model = build_from_kwargs(*ckpt_io.model_spec(ck))
    model.load_state_dict(ck["model"])  # strict: the analysis loaders rebuild it this way
    if family in ("mae", "lcmae", "ae", "simclr"):
        assert ck["num_classes"] is None and type(model).__name__ != "VisionTransformer"
        assert 0 <= run.metrics["knn_top1"] <= 100  # the pretraining kNN monitor (asked for: off at small scales)
    else:
        assert ck["num_classes"] == model.num_classes == 10  # the digits' classes, resolved from the data
        assert 0 <= run.metrics["top1"] <= 100
        if family == "finetune":
            assert ck["config"]["pretrain"] == out["mae"].name
    if family == "lcmae":
        rec = [r for r in run.read_log() if r["event"] == "train"][0]
        assert {"loss_mae", "loss_cross", "loss_in", "feature_std", "effective_rank"} <= set(rec)


def test_finetune_loads_the_pretrained_encoder(smoke_runs):
    _, out = smoke_runs
    from lcmae_core.models.classifier import load_pretrained_encoder, vit_kwargs
    from timm.models.vision_transformer import VisionTransformer
    cfg = configs.preset("finetune", "smoke")
    vit = VisionTransformer(**vit_kwargs(cfg, 10, "avg", 0.0))
    state = ckpt_io.load(out["mae"].checkpoint)["model"]
    rep = load_pretrained_encoder(vit, state)
    assert torch.equal(vit.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])
    assert torch.equal(vit.pos_embed, state["pos_embed"])
    assert set(rep["fresh"]) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}


def test_loss_falls_on_the_cpu_preset_data(tmp_path):
    cfg = configs.apply_overrides(configs.preset("mae", "cpu"), [
        "progress=false", "data.limit=512", "optim.epochs=4", "optim.batch_size=64", "optim.warmup_epochs=1",
        "model.depth=2", "knn=false"])
    run = runs.run_or_load(cfg, root=str(tmp_path))
    losses = [r["loss"] for r in run.read_log() if r["event"] == "epoch"]
    assert len(losses) == 4
    assert losses[-1] < losses[0] - 0.05, losses
