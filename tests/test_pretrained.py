"""The official-checkpoint loader, on small files written in facebookresearch/mae's format.

``main_pretrain.py`` saves ``{"model", "optimizer", "epoch", "scaler", "args"}`` with ``args`` an
``argparse.Namespace``; the released ``mae_pretrain_vit_*.pth`` hold the encoder only, under ``"model"``.
"""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch

from lcmae_core.models import SIZES, MaskedAutoencoderViT, create_model, mae_vit_base_patch16
from lcmae_core.pretrained import (CheckpointError, infer_mae_config, load_mae_state_dict, load_official_mae,
                                   read_checkpoint)

ENCODER_PREFIXES = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.")


def randomised_test_model(seed: int = 0, **kw) -> MaskedAutoencoderViT:
    torch.manual_seed(seed)
    model = create_model("mae", "test", **kw)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def official_checkpoint(net: MaskedAutoencoderViT, sd: dict | None = None, **args) -> dict:
    """A checkpoint as misc.save_model writes it, with a real AdamW state and a GradScaler state."""
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    return {
        "model": net.state_dict() if sd is None else sd,
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                   "_growth_tracker": 0},
        "args": argparse.Namespace(**{"batch_size": 64, "epochs": 400, "accum_iter": 1, "input_size": 32,
                                      "mask_ratio": 0.75, "norm_pix_loss": True, "weight_decay": 0.05,
                                      "lr": None, "blr": 1.5e-4, "output_dir": "./output_dir",
                                      "device": "cuda", "seed": 0, "distributed": False, **args}),
    }


def save(obj, path) -> str:
    torch.save(obj, path)
    return os.fspath(path)


def same_state(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def outputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randn(2, 3, 32, 32, generator=g)
    noise = torch.rand(2, model.num_patches, generator=g)
    with torch.no_grad():
        return model(imgs, 0.75, noise)


# ---------------------------------------------------------------------------------------------------------------
# reading safely

def test_namespace_needs_the_safe_globals_path(tmp_path):
    path = save(official_checkpoint(randomised_test_model()), tmp_path / "ckpt.pth")
    # weights_only without an allow-list refuses the argparse.Namespace of an official checkpoint ...
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location="cpu", weights_only=True)
    # ... which read_checkpoint allows, and nothing else
    ckpt = read_checkpoint(path)
    assert isinstance(ckpt["args"], argparse.Namespace) and ckpt["args"].norm_pix_loss is True
    assert ckpt["epoch"] == 3 and ckpt["scaler"]["scale"] == 65536.0


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["args", "model"])
def test_malicious_pickle_is_refused(tmp_path, where):
    marker = tmp_path / "pwned"
    ckpt = official_checkpoint(randomised_test_model())
    if where == "args":
        ckpt["args"] = Evil(marker)
    else:
        ckpt["model"]["blocks.0.norm1.weight"] = Evil(marker)
    path = save(ckpt, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="does not trust .posix.system.") as e:
        read_checkpoint(path)
    assert "weights_only=False" not in str(e.value)  # torch's advice, the unsafe step, is not repeated
    with pytest.raises(CheckpointError):
        load_official_mae(path)
    assert not marker.exists()


def test_malicious_legacy_pickle_is_refused(tmp_path):
    """A plain pickle file (not torch's zip format) goes through the same restricted unpickler."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_legacy.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": {}, "args": Evil(marker)}, f, protocol=2)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)
    assert not marker.exists()


def test_missing_file_and_non_dict(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "nope.pth")
    path = save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError):
        load_official_mae(path)


# ---------------------------------------------------------------------------------------------------------------
# full and encoder-only checkpoints

def test_full_checkpoint_round_trips_exactly(tmp_path):
    src = randomised_test_model(1, norm_pix_loss=True)
    path = save(official_checkpoint(src), tmp_path / "full.pth")

    model, report = load_official_mae(path)  # architecture inferred from the shapes
    assert not report.decoder_initialised
    assert report.args["norm_pix_loss"] is True and model.norm_pix_loss
    assert same_state(model.state_dict(), src.state_dict())
    assert sorted(report.loaded) == sorted(src.state_dict())
    # the head counts (which shapes cannot tell) are those of the test size, so the numbers match too
    assert model.blocks[0].attn.num_heads == SIZES["test"]["num_heads"]
    assert model.decoder_blocks[0].attn.num_heads == SIZES["test"]["decoder_num_heads"]
    for a, b in zip(outputs(model.eval()), outputs(src)):
        assert torch.equal(a, b)

    # into a given model
    target = create_model("mae", "test")
    model2, report2 = load_official_mae(path, model=target)
    assert model2 is target and same_state(target.state_dict(), src.state_dict())


def test_encoder_only_checkpoint_leaves_the_decoder_initialised(tmp_path):
    src = randomised_test_model(2)
    enc = {k: v for k, v in src.state_dict().items() if k.startswith(ENCODER_PREFIXES)}
    assert "decoder_embed.weight" not in enc and "mask_token" not in enc and "norm.weight" in enc
    path = save({"model": enc}, tmp_path / "mae_pretrain_vit_test.pth")  # as the released encoder files

    torch.manual_seed(3)
    model = create_model("mae", "test")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model, report = load_official_mae(path, model=model)
    assert report.decoder_initialised
    assert "decoder" in str(report)
    after = model.state_dict()
    for k in after:
        if k.startswith(ENCODER_PREFIXES):
            assert torch.equal(after[k], enc[k]), k
        else:
            assert torch.equal(after[k], before[k]), k  # decoder untouched
    assert sorted(report.loaded) == sorted(enc)

    inferred, report = load_official_mae(path)  # no model given: built from the encoder's shapes
    assert report.decoder_initialised and inferred.blocks[0].attn.num_heads == SIZES["test"]["num_heads"]


def test_classifier_head_is_skipped(tmp_path):
    src = randomised_test_model(4)
    sd = dict(src.state_dict())
    sd["head.weight"], sd["head.bias"] = torch.zeros(10, 32), torch.zeros(10)
    model = create_model("mae", "test")
    report = load_mae_state_dict(model, sd)
    assert sorted(report.skipped) == ["head.bias", "head.weight"]
    assert same_state(model.state_dict(), src.state_dict())


# ---------------------------------------------------------------------------------------------------------------
# mismatches name the keys

def _sd():
    return dict(randomised_test_model(5).state_dict())


def test_unexpected_key_is_named():
    sd = _sd()
    sd["blocks.0.attn.q_norm.weight"] = torch.ones(16)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.q_norm\.weight"):
        load_mae_state_dict(create_model("mae", "test"), sd)


def test_missing_encoder_key_is_named():
    sd = _sd()
    del sd["blocks.1.mlp.fc2.bias"]
    with pytest.raises(CheckpointError, match=r"blocks\.1\.mlp\.fc2\.bias"):
        load_mae_state_dict(create_model("mae", "test"), sd)


def test_partial_decoder_is_named():
    """Neither full nor encoder-only: a checkpoint with part of the decoder must not load silently."""
    sd = _sd()
    del sd["decoder_blocks.0.mlp.fc1.weight"]
    with pytest.raises(CheckpointError, match=r"decoder_blocks\.0\.mlp\.fc1\.weight"):
        load_mae_state_dict(create_model("mae", "test"), sd)


def test_shape_mismatch_is_named():
    sd = _sd()
    sd["decoder_pred.weight"] = torch.zeros(100, 32)
    with pytest.raises(CheckpointError, match=r"decoder_pred\.weight"):
        load_mae_state_dict(create_model("mae", "test"), sd)


def test_nothing_is_loaded_when_a_check_fails():
    model = create_model("mae", "test")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sd = _sd()
    sd["decoder_pred.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError):
        load_mae_state_dict(model, sd)
    assert same_state(model.state_dict(), before)


def test_wrong_args_model_gives_a_named_error(tmp_path):
    """args.model says ViT-B but the weights are the test size: the ViT-B keys the file lacks are named."""
    path = save(official_checkpoint(randomised_test_model(), model="mae_vit_base_patch16"), tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: blocks\.10\.attn"):
        load_official_mae(path)


def test_missing_pos_embed_is_named(tmp_path):
    sd = _sd()
    del sd["pos_embed"]
    with pytest.raises(CheckpointError, match="pos_embed"):
        load_official_mae(save({"model": sd}, tmp_path / "c.pth"))


# ---------------------------------------------------------------------------------------------------------------
# a real-size ViT-B/16

def test_base_checkpoint_with_official_args_model(tmp_path):
    torch.manual_seed(0)
    src = mae_vit_base_patch16()
    sd = src.state_dict()
    cfg = infer_mae_config(sd)  # from the shapes alone
    assert {k: cfg[k] for k in SIZES["base_patch16"]} == SIZES["base_patch16"] and cfg["img_size"] == 224

    ckpt = official_checkpoint(src, model="mae_vit_base_patch16", input_size=224, norm_pix_loss=False)
    ckpt["optimizer"] = {"state": {}, "param_groups": []}  # keep the file small
    path = save(ckpt, tmp_path / "mae_base.pth")
    model, report = load_official_mae(path)
    assert not report.decoder_initialised and report.args["model"] == "mae_vit_base_patch16"
    assert model.blocks[0].attn.num_heads == 12 and model.decoder_blocks[0].attn.num_heads == 16
    assert model.patch_size == 16 and model.num_patches == 196 and not model.norm_pix_loss
    assert same_state(model.state_dict(), sd)
