"""The simclr family (Fig. 5's global contrastive model): NT-Xent, the views, the encoder's keys, training end to end,
loading by the finetune/linprobe recipes and the run loaders, and the encoder attention analysis."""

import math

import pytest
import torch

from lcmae_core import configs, runs, scales
from lcmae_core.configs import ConfigError
from lcmae_core.losses import nt_xent
from lcmae_core.models import ContrastiveViT, MaskedAutoencoderViT, create_model
from lcmae_core.models.contrastive import view_noise_dim

pytestmark = pytest.mark.usefixtures("one_thread")


# -------------------------------------------------------------------------------------------------------
# the loss
def nt_xent_by_hand(z1, z2, t):
    """SimCLR's loss written out: for each of the 2N anchors, -s(a, p) / t + log sum_{k != a} exp(s(a, k) / t)."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for a in range(n2):
        p = a + n if a < n else a - n
        terms = [float(z[a] @ z[k]) / t for k in range(n2) if k != a]
        m = max(terms)
        lse = m + math.log(sum(math.exp(x - m) for x in terms))
        total += -float(z[a] @ z[p]) / t + lse
    return total / n2


@pytest.mark.parametrize("n,d,t", [(1, 4, 0.5), (3, 5, 0.2), (6, 8, 0.1), (5, 3, 1.0)])
def test_nt_xent_matches_the_hand_written_loss(n, d, t):
    g = torch.Generator().manual_seed(n * 100 + d)
    z1, z2 = torch.randn(n, d, generator=g) * 3, torch.randn(n, d, generator=g)
    assert float(nt_xent(z1, z2, t)) == pytest.approx(nt_xent_by_hand(z1, z2, t), rel=1e-5, abs=1e-6)
    # the scale of the inputs does not matter (they are L2-normalised) and the views enter symmetrically
    assert float(nt_xent(5 * z1, z2, t)) == pytest.approx(float(nt_xent(z1, z2, t)), rel=1e-5, abs=1e-6)
    assert float(nt_xent(z2, z1, t)) == pytest.approx(float(nt_xent(z1, z2, t)), rel=1e-5, abs=1e-6)


def test_nt_xent_is_lowest_when_views_agree_and_negatives_are_orthogonal():
    n, t = 4, 0.2
    e = torch.eye(2 * n)[:n]  # n orthonormal vectors in 2n dimensions
    best = float(nt_xent(e, e, t))
    # closed form: each anchor's positive at cosine 1, its 2n - 2 negatives at cosine 0
    assert best == pytest.approx(-1 / t + math.log(math.exp(1 / t) + 2 * n - 2), rel=1e-6)
    g = torch.Generator().manual_seed(0)
    others = {
        "random": (torch.randn(n, 2 * n, generator=g), torch.randn(n, 2 * n, generator=g)),
        "views disagree": (e, torch.roll(e, 1, dims=0)),  # each view's partner is another image's
        "collapsed": (torch.ones(n, 2 * n), torch.ones(n, 2 * n)),  # the negatives as close as the positive
        "noisy views": (e, e + 0.3 * torch.randn(n, 2 * n, generator=g)),
    }
    for name, (a, b) in others.items():
        assert float(nt_xent(a, b, t)) > best + 1e-3, name
    assert float(nt_xent(torch.ones(n, 3), torch.ones(n, 3), t)) == pytest.approx(math.log(2 * n - 1), rel=1e-6)


def test_nt_xent_refuses_mismatched_views():
    with pytest.raises(ValueError, match="shape"):
        nt_xent(torch.randn(3, 4), torch.randn(2, 4), 0.2)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(3, 4), torch.randn(3, 4), 0.0)


# -------------------------------------------------------------------------------------------------------
# the model
def test_views_differ_keep_the_shape_and_are_reproducible():
    model = create_model("simclr", "test")
    imgs = torch.randn(6, 3, 32, 32)
    views = model.make_views(imgs, generator=torch.Generator().manual_seed(1))
    assert views.shape == (12, 3, 32, 32) and torch.isfinite(views).all()
    v1, v2 = views.chunk(2)
    for a, b in ((v1, v2), (v1, imgs), (v2, imgs)):
        assert (a - b).abs().flatten(1).amax(1).min() > 1e-3  # every image's views differ
    again = model.make_views(imgs, generator=torch.Generator().manual_seed(1))
    assert torch.equal(views, again)
    assert not torch.equal(views, model.make_views(imgs, generator=torch.Generator().manual_seed(2)))
    noise = model.view_noise(6, generator=torch.Generator().manual_seed(1))
    assert noise.shape == (2, 6, view_noise_dim(3)) and torch.equal(model.make_views(imgs, noise), views)
    torch.manual_seed(5)
    a = model.make_views(imgs)
    torch.manual_seed(5)
    assert torch.equal(a, model.make_views(imgs))  # the global RNG, which the trainer seeds
    # the loss from the same noise is the same (train mode: BatchNorm uses the batch statistics)
    model.train()
    assert torch.equal(model.compute_losses(imgs, 0.0, noise)["loss"], model.compute_losses(imgs, 0.0, noise)["loss"])
    with pytest.raises(ValueError, match="noise"):
        model.make_views(imgs, torch.rand(2, 5, view_noise_dim(3)))


def test_views_at_identity_parameters_reproduce_the_input():
    """Full-area crop at aspect 1 (u = 0.5 for the ratio), no flip, gain 1, bias 0, no greyscale: the input back."""
    model = create_model("simclr", "test")
    imgs = torch.randn(2, 3, 32, 32)
    u = torch.full((2, 2, view_noise_dim(3)), 0.5)
    u[..., 0] = 1.0  # area 1 (the upper end of the crop scale)
    u[..., 4] = 0.9  # no flip
    u[..., 5] = 0.9  # no greyscale
    assert torch.allclose(model.make_views(imgs, u), torch.cat([imgs, imgs]), atol=1e-5)
    u[1, :, 4] = 0.1  # view 2 flipped
    u[1, :, 5] = 0.1  # and grey
    v2 = model.make_views(imgs, u)[2:]
    assert torch.allclose(v2, imgs.flip(-1).mean(1, keepdim=True).expand_as(imgs), atol=1e-5)


def test_state_dict_is_the_mae_encoder_plus_the_projector():
    model = create_model("simclr", "test")
    mae = create_model("mae", "test")
    own, ref = model.state_dict(), mae.state_dict()
    encoder = {k: v.shape for k, v in ref.items() if not k.startswith(("decoder", "mask_token"))}
    assert {k: v.shape for k, v in own.items() if not k.startswith("projector.")} == encoder
    assert not [k for k in own if k.startswith(("decoder", "mask_token"))]
    assert {n for n, _ in model.named_parameters()} >= {"cls_token", "blocks.0.attn.qkv.weight", "norm.weight"}
    assert not model.pos_embed.requires_grad and torch.equal(model.pos_embed, mae.pos_embed)  # fixed sin-cos
    assert model.temperature == 0.2 and isinstance(model.projector[1], torch.nn.BatchNorm1d)
    assert model.projector[-1].out_features == 256  # the default proj_dim
    assert create_model("simclr", "test", proj_dim=24).projector[-1].out_features == 24
    # MAE's encoder weights load into it exactly (strict on the encoder keys)
    missing, unexpected = model.load_state_dict({k: ref[k] for k in encoder}, strict=False)
    assert not unexpected and all(k.startswith("projector.") for k in missing)
    imgs = torch.randn(3, 3, 32, 32)
    lat, mask, ids = model.forward_encoder(imgs)
    in_order = torch.arange(model.num_patches, dtype=torch.float).expand(3, -1)  # MAE's noise: every token, in order
    assert torch.allclose(lat, mae.eval().forward_encoder(imgs, 0.0, in_order)[0]) and not mask.any()
    with pytest.raises(ValueError, match="does not mask"):
        model.forward_encoder(imgs, 0.75)
    with pytest.raises(ValueError, match="no decoder"):
        model.forward_decoder(lat, ids)
    with pytest.raises(TypeError, match="unexpected"):
        ContrastiveViT(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, setting="a")


def test_one_step_trains_every_parameter_but_the_fixed_ones():
    model = create_model("simclr", "test")
    out = model.compute_losses(torch.randn(8, 3, 32, 32))
    assert set(out) >= {"loss", "loss_nce", "z"} and out["z"].shape == (16, 256)
    out["loss"].backward()
    no_grad = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    assert not no_grad
    assert "pos_embed" not in {n for n, p in model.named_parameters() if p.requires_grad}
    with pytest.raises(ValueError, match="do not fit this model"):
        model(torch.randn(2, 3, 64, 64))


# -------------------------------------------------------------------------------------------------------
# configs
def test_config_refuses_masking_and_builds_the_model():
    cfg = configs.preset("simclr", "smoke")
    assert cfg.mask_ratio == 0.0 and configs.validate(cfg) is cfg
    with pytest.raises(ConfigError, match="mask_ratio=0"):
        configs.validate(configs.apply_overrides(cfg, {"mask_ratio": 0.75}))
    kw = cfg.model.kwargs("simclr")
    assert set(kw) == set(configs.ModelConfig.ENCODER_FIELDS) | {"proj_dim"}
    assert isinstance(create_model("simclr", "test"), ContrastiveViT)
    cpu = configs.preset("simclr", "cpu")
    assert cpu.optim.base_lr == scales.CPU_BASE_LR["mae"] and configs.preset("simclr", "paper").optim.base_lr == 1.5e-4
    from lcmae_core.experiments import Study, describe
    assert "projector" in describe(cpu) and "decoder" not in describe(cpu)
    planner = []
    run = Study(scale="smoke", planner=planner).contrastive(seed=1)
    assert run.name.startswith("simclr-") and planner[0].seed == 1 and planner[0].family == "simclr"


# -------------------------------------------------------------------------------------------------------
# end to end
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("simclr_runs"))
    cfg = configs.apply_overrides(configs.preset("simclr", "smoke"),
                                  # 3 epochs of 4 steps: one epoch's 4 steps do not rise above the noise of the views
                                  {"progress": False, "log_every": 1, "knn": True, "optim.epochs": 3})
    pre = runs.run_or_load(cfg, root=root)
    lp = configs.apply_overrides(configs.preset("linprobe", "smoke"),
                                 {"progress": False, "pretrain": pre.name,
                                  **{f"model.{k}": v for k, v in cfg.model.encoder_kwargs().items()}})
    return root, cfg, pre, runs.run_or_load(lp, root=root)


def test_smoke_run_trains_and_its_loss_falls(trained):
    _, cfg, run, _ = trained
    assert run.finished and math.isfinite(run.metrics["train_loss"])
    losses = [r["loss"] for r in run.read_log() if r["event"] == "train"]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)  # one record a step
    chance = math.log(2 * cfg.optim.batch_size - 1)  # NT-Xent of features that tell nothing apart
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4  # the first and the last epoch
    assert last < first - 0.1 and last < chance
    assert 0 <= run.metrics["knn_top1"] <= 100  # the pretraining kNN monitor works on its CLS token


def test_linear_probe_loads_its_encoder(trained):
    from lcmae_core.reference_models import load_run

    _, _, pre, lp = trained
    assert lp.finished and 0 <= lp.metrics["top1"] <= 100
    simclr, _ = load_run(pre.checkpoint)
    vit, _ = load_run(lp.checkpoint)
    assert isinstance(simclr, ContrastiveViT)
    own = vit.state_dict()
    for k, v in simclr.state_dict().items():
        if k.startswith(("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.")):
            assert torch.equal(own[k], v), k


def test_run_loaders_rebuild_it(trained):
    from lcmae_core.reference_models import load_run, load_run_init
    from lcmae_core.train import checkpoint as ckpt_io

    _, _, pre, _ = trained
    model, config = load_run(pre.checkpoint)
    assert config["family"] == "simclr" and not model.training
    init = load_run_init(pre.dir)
    snap = ckpt_io.load(ckpt_io.snapshot_path(pre.dir, 0))["model"]  # the initialisation the trainer saved
    assert set(init.state_dict()) == set(snap)
    assert all(torch.equal(v, snap[k]) for k, v in init.state_dict().items())
    assert not torch.equal(model.blocks[0].attn.qkv.weight, init.blocks[0].attn.qkv.weight)  # it trained


def test_encoder_attention_analysis_runs_on_it(trained):
    from lcmae_core.analysis import attention_stats_curves
    from lcmae_core.analysis.geometry import num_prefix_tokens
    from lcmae_core.reference_models import load_run

    _, cfg, pre, _ = trained
    model, _ = load_run(pre.checkpoint)
    assert num_prefix_tokens(model) == 1
    imgs = torch.randn(5, 3, cfg.model.img_size, cfg.model.img_size)
    curves = attention_stats_curves(model, imgs, "encoder")
    assert curves["distance"].shape == (cfg.model.depth, cfg.model.num_heads)
    assert torch.isfinite(curves["distance"]).all() and torch.isfinite(curves["entropy"]).all()
    # the same numbers as an MAE holding the same encoder
    mae = MaskedAutoencoderViT(**configs.preset("mae", "smoke").model.kwargs("mae"))
    mae.load_state_dict(model.state_dict(), strict=False)
    ref = attention_stats_curves(mae, imgs, "encoder")
    assert torch.allclose(curves["distance"], ref["distance"]) and torch.allclose(curves["entropy"], ref["entropy"])
