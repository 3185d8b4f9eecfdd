"""Loaders of lcmae_core.reference_models: every format round-trips a file made here; bad files name the keys."""

import pytest
import timm
import torch

from lcmae_core import configs
from lcmae_core.analysis import encoder_attention
from lcmae_core.models import create_model
from lcmae_core.pretrained import CheckpointError
from lcmae_core.reference_models import (load_deit, load_dino, load_mae, load_run, load_timm_vit,
                                         mae_encoder_as_vit, vit_state_dict)

TINY = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2)


def tiny_vit(num_classes=0, seed=0):
    torch.manual_seed(seed)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, **TINY).eval()


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_dino_hub_format_round_trip(tmp_path):
    ref = tiny_vit()
    path = tmp_path / "dino_hub.pth"
    torch.save(ref.state_dict(), path)  # hub format: cls_token, pos_embed, blocks.*, norm.*, no head
    got = load_dino(path, arch="vit_tiny_patch16_224", **TINY)
    assert same_weights(ref, got)
    # shapes alone also suffice (head width 32 here, so give the head count)
    assert same_weights(ref, load_dino(path, arch=None, num_heads=2))


def test_dino_full_training_checkpoint_uses_the_teacher(tmp_path):
    teacher, student = tiny_vit(seed=1), tiny_vit(seed=2)
    wrap = lambda m, pre: {**{pre + k: v for k, v in m.state_dict().items()},  # noqa: E731
                           pre.replace("backbone.", "") + "head.mlp.0.weight": torch.zeros(8, 64),
                           pre.replace("backbone.", "") + "head.last_layer.weight_g": torch.ones(1, 8)}
    ckpt = {"teacher": wrap(teacher, "backbone."), "student": wrap(student, "module.backbone."), "epoch": 3}
    torch.save(ckpt, tmp_path / "full.pth")
    got = load_dino(tmp_path / "full.pth", arch="vit_tiny_patch16_224", **TINY)
    assert same_weights(teacher, got)
    assert "blocks.0.attn.qkv.weight" in vit_state_dict(ckpt) and not any(
        k.startswith("head.") for k in vit_state_dict(ckpt))


def test_timm_format_and_safetensors_round_trip(tmp_path):
    ref = tiny_vit(num_classes=10)
    torch.save({"model": ref.state_dict()}, tmp_path / "deit.pth")  # the official DeiT layout
    got = load_deit(tmp_path / "deit.pth", arch="vit_tiny_patch16_224", **TINY)
    assert same_weights(ref, got) and got.num_classes == 10
    from safetensors.torch import save_file
    save_file(ref.state_dict(), str(tmp_path / "model.safetensors"))
    assert same_weights(ref, load_timm_vit(tmp_path / "model.safetensors", num_heads=2))


def test_bad_vit_files_name_the_keys(tmp_path):
    sd = tiny_vit().state_dict()
    sd.pop("norm.weight")
    sd["blocks.0.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys: blocks\.0\.extra\.weight.*missing keys: norm\.weight"):
        load_dino(tmp_path / "bad.pth", arch="vit_tiny_patch16_224", **TINY)
    torch.save(tiny_vit().state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match="shape mismatch.*pos_embed"):
        load_dino(tmp_path / "tiny.pth", arch="vit_tiny_patch16_224", img_size=64, patch_size=8, embed_dim=64,
                  depth=2, num_heads=2)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_dino(tmp_path / "absent.pth")


def test_timm_name_without_network_fails_clearly(monkeypatch):
    def offline(*args, **kwargs):  # what timm raises when the hub cannot be reached
        raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match="without a network, pass a local checkpoint file"):
        load_timm_vit("vit_tiny_patch16_224.augreg_in21k", img_size=32)


def test_official_mae_files_and_encoder_as_vit(tmp_path):
    torch.manual_seed(0)
    mae = create_model("mae", "test").eval()
    sd = mae.state_dict()
    torch.save({"model": sd}, tmp_path / "mae_full.pth")
    enc = {k: v for k, v in sd.items() if not k.startswith(("decoder_", "mask_token"))}
    torch.save({"model": enc}, tmp_path / "mae_enc.pth")
    full, rep = load_mae(tmp_path / "mae_full.pth", num_heads=2, decoder_num_heads=2, mlp_ratio=2.0)
    assert same_weights(mae, full) and not rep.decoder_initialised
    encm, rep = load_mae(tmp_path / "mae_enc.pth", num_heads=2, decoder_num_heads=2)
    assert rep.decoder_initialised and torch.equal(encm.blocks[1].mlp.fc2.weight, mae.blocks[1].mlp.fc2.weight)
    # the encoder in a timm ViT computes the same features as the MAE at mask ratio 0 (tokens in image order)
    vit = mae_encoder_as_vit(mae)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(vit.forward_features(x), encoder_attention(mae, x).output, rtol=1e-5, atol=1e-5)
    assert vit.blocks[0].attn.num_heads == 2 and vit.num_classes == 0
    with pytest.raises(FileNotFoundError, match="OFFICIAL|mae_pretrain_vit_base.pth"):
        load_mae(tmp_path / "nope.pth")


def _run_checkpoint(cfg, num_classes=None, seed=0):
    """A randomly initialised model of a run config, and the checkpoint dict the trainer writes for it."""
    from lcmae_core.models import build_model
    from lcmae_core.train import checkpoint as ckpt_io
    torch.manual_seed(seed)
    model = build_model(cfg, num_classes)
    return model, {"model": model.state_dict(), **ckpt_io.model_record(cfg, num_classes), "epoch": 1}


@pytest.mark.parametrize("family,changes", [("mae", []), ("lcmae", ["model.proj_dim=16", "model.setting=e"]),
                                            ("ae", ["model.block_size=21"]), ("simclr", []),
                                            ("finetune", []), ("linprobe", [])])
def test_run_checkpoint_round_trip(tmp_path, family, changes):
    from timm.models.vision_transformer import VisionTransformer
    cfg = configs.build(family, "smoke", changes)
    K = 7 if family in ("finetune", "linprobe") else None  # a class count no dataset preset has: it comes from the file
    model, ck = _run_checkpoint(cfg, K)
    torch.save(ck, tmp_path / "checkpoint.pt")
    got, config = load_run(tmp_path / "checkpoint.pt")
    assert type(got) is type(model) and same_weights(model, got) and not got.training
    assert config == configs.to_dict(cfg) and configs.from_dict(config).family == family
    if K is not None:
        assert isinstance(got, VisionTransformer) and got.num_classes == K
    if family == "linprobe":  # fb/mae's probe head: BatchNorm without affine, then Linear
        assert isinstance(got.head[0], torch.nn.BatchNorm1d) and not got.head[0].affine


@pytest.mark.parametrize("family,kw", [("mae", {}), ("lcmae", {"proj_dim": 16, "setting": "e"}),
                                       ("ae", {"block_size": 24})])
def test_earlier_run_checkpoints_still_load(tmp_path, family, kw):
    """Checkpoints written before the run config was their one record: {"family", "model": kwargs} beside
    "run_config" (and test files without it)."""
    from lcmae_core.models import SIZES
    kwargs = {**SIZES["test"], **kw}
    torch.manual_seed(0)
    model = create_model(family, "test", **kw)
    for i, extra in enumerate(({}, {"run_config": {"family": family}})):
        path = tmp_path / f"checkpoint{i}.pt"
        torch.save({"model": model.state_dict(), "config": {"family": family, "model": kwargs}, "epoch": 1, **extra},
                   path)
        got, config = load_run(path)
        assert type(got) is type(model) and same_weights(model, got) and config["family"] == family


@pytest.mark.parametrize("family", ["finetune", "linprobe"])
def test_earlier_classifier_checkpoints_still_load(tmp_path, family):
    from lcmae_core.models import build_from_kwargs
    kw = dict(TINY, num_classes=5, global_pool="avg" if family == "finetune" else "token")
    config = {"family": family, "model": kw, "head": "batchnorm_linear"}
    torch.manual_seed(0)
    model = build_from_kwargs(family, kw)
    torch.save({"model": model.state_dict(), "config": config, "run_config": {}, "optimizer": {"state": {}}},
               tmp_path / "c.pt")
    got, _ = load_run(tmp_path / "c.pt")
    assert same_weights(model, got)


def test_bad_run_checkpoints_fail_clearly(tmp_path):
    from lcmae_core.models import SIZES
    cfg = configs.build("mae", "smoke")
    model, good = _run_checkpoint(cfg)
    sd = good["model"]
    run_config = good["config"]
    old = {"family": "mae", "model": dict(SIZES["test"])}  # the earlier per-recipe record
    cases = {
        "no_config.pt": ({"model": sd}, "not a run checkpoint"),
        "family.pt": ({"model": sd, "config": {**run_config, "family": "vit"}}, "unknown family 'vit'"),
        "key.pt": ({"model": sd, "config": {**run_config, "model": {**run_config["model"], "depthh": 3}}},
                   "unknown config key 'model.depthh'"),
        "classes.pt": ({"model": sd, "config": configs.to_dict(configs.build("linprobe", "smoke"))},
                       "linprobe run's model needs num_classes"),
        "keys.pt": ({**good, "model": {**{k: v for k, v in sd.items() if k != "norm.bias"}, "foo": torch.zeros(1)}},
                    r"unexpected keys: foo; missing keys: norm\.bias"),
        "shape.pt": ({**good, "config": {**run_config, "model": {**run_config["model"], "embed_dim": 64}}},
                     "shape mismatch"),
        "old_family.pt": ({"model": sd, "config": {**old, "family": "vit"}}, "config\\['family'\\] is 'vit'"),
        "old_kwargs.pt": ({"model": sd, "config": {**old, "model": {**old["model"], "depthh": 3}}}, "depthh"),
    }
    for name, (obj, msg) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError, match=msg):
            load_run(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nope.pt; pass the checkpoint of a run"):
        load_run(tmp_path / "nope.pt")
    # anything beyond tensors and containers is refused (weights_only=True), even an argparse.Namespace
    import argparse
    torch.save({**good, "args": argparse.Namespace(a=1)}, tmp_path / "ns.pt")
    with pytest.raises(CheckpointError, match=r"does not trust \(argparse.Namespace\)"):
        load_run(tmp_path / "ns.pt")


def test_figs2_4_models_from_files(tmp_path):
    from lcmae_core.reference_models import load_decoder_mae, load_semantic_reference

    torch.manual_seed(0)
    net = create_model("mae", "test", decoder_depth=3).eval()
    full = tmp_path / "mae_full.pth"
    torch.save({"model": net.state_dict()}, full)
    model, text = load_decoder_mae(str(full))
    assert len(model.decoder_blocks) == 3 and "mae_full.pth" in text and "decoder transformer x3" in text
    enc_only = tmp_path / "mae_enc.pth"
    torch.save({"model": {k: v for k, v in net.state_dict().items()
                          if not k.startswith(("decoder_", "mask_token"))}}, enc_only)
    with pytest.raises(CheckpointError, match="only the encoder"):
        load_decoder_mae(str(enc_only))
    dino = tmp_path / "dino_hub.pth"
    torch.save(tiny_vit().state_dict(), dino)
    ref, text = load_semantic_reference(str(dino), arch="vit_tiny_patch16_224", **TINY)
    assert text.startswith("DINO dino_hub.pth") and "patch" in text


def test_official_names_without_a_network_fail_with_a_clear_error(tmp_path, monkeypatch):
    def offline(url, dst, progress=True):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="without a network, pass a local file"):
        load_mae("mae_pretrain_vit_base.pth", cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="without a network"):
        load_dino("https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
                  cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written in the cache
