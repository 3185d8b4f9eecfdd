"""Shapes of every model family with every decoder at the "test" size, and clear errors for bad sizes."""

import pytest
import torch

from lcmae_core.models import SIZES, create_model

DECODERS = ["transformer", "gaussian", "conv"]
N, C, IMG, P = 2, 3, 32, 8
L = (IMG // P) ** 2  # 16
D = SIZES["test"]["embed_dim"]
KEEP = int(L * (1 - 0.75))  # 4


def _imgs():
    return torch.randn(N, C, IMG, IMG, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("decoder", DECODERS)
def test_mae_shapes(decoder):
    torch.manual_seed(0)
    model = create_model("mae", "test", decoder=decoder)
    imgs = _imgs()
    latent, mask, ids_restore = model.forward_encoder(imgs, 0.75)
    assert latent.shape == (N, 1 + KEEP, D)
    assert mask.shape == (N, L) and ids_restore.shape == (N, L)
    assert torch.equal(mask.sum(1), torch.full((N,), float(L - KEEP)))
    pred = model.forward_decoder(latent, ids_restore)
    assert pred.shape == (N, L, P * P * C)
    hidden = model.forward_decoder_hidden(latent, ids_restore)
    assert hidden.shape == (N, L, SIZES["test"]["decoder_embed_dim"])
    loss, pred, mask = model(imgs)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert pred.shape == (N, L, P * P * C) and mask.shape == (N, L)
    out = model.compute_losses(imgs, 0.5)
    assert set(out) >= {"loss", "loss_mae", "pred", "mask"}
    assert out["pred"].shape == (N, L, P * P * C)
    assert out["mask"].sum().item() == N * (L - int(L * 0.5))
    assert model.unpatchify(model.patchify(imgs)).shape == imgs.shape
    assert torch.equal(model.unpatchify(model.patchify(imgs)), imgs)


@pytest.mark.parametrize("decoder", DECODERS)
def test_lcmae_shapes(decoder):
    torch.manual_seed(0)
    model = create_model("lcmae", "test", decoder=decoder, proj_dim=24)
    imgs = _imgs()
    latent, mask, ids_restore = model.forward_encoder(imgs, 0.75)
    assert latent.shape == (N, 1 + KEEP, D)
    assert model.forward_decoder(latent, ids_restore).shape == (N, L, P * P * C)
    pred, v, mask, hidden = model.forward_views(imgs, 0.75)
    assert pred.shape == (2 * N, L, P * P * C)
    assert v.shape == (2 * N, L, 24)
    assert mask.shape == (2 * N, L)
    loss, pred, mask = model(imgs)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert pred.shape == (2 * N, L, P * P * C) and mask.shape == (2 * N, L)
    out = model.compute_losses(imgs)
    assert set(out) >= {"loss", "loss_mae", "loss_cross", "loss_in", "pred", "mask", "v"}
    for k in ("loss", "loss_mae", "loss_cross", "loss_in"):
        assert out[k].dim() == 0 and torch.isfinite(out[k])
    with pytest.raises(ValueError, match="noise must have shape"):
        model.forward_views(imgs, 0.75, torch.rand(N, L))


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("block", [8, 24])
def test_ae_shapes(decoder, block):
    torch.manual_seed(0)
    model = create_model("ae", "test", decoder=decoder, block_size=block)
    imgs = _imgs()
    latent, mask, ids_restore = model.forward_encoder(imgs)
    assert latent.shape == (N, 1 + L, D)
    assert mask.shape == (N, L) and not mask.any()
    assert torch.equal(ids_restore, torch.arange(L).expand(N, L))
    pred = model.forward_decoder(latent, ids_restore)
    assert pred.shape == (N, L, block * block * C)
    loss, pred, mask = model(imgs)
    assert loss.dim() == 0 and torch.isfinite(loss) and pred.shape == (N, L, block * block * C)
    assert model.targets(imgs).shape == (N, L, block * block * C)
    assert model.center_patches(pred).shape == (N, L, P * P * C)
    out = model.compute_losses(imgs)
    assert out["pred"].shape == (N, L, block * block * C)


@pytest.mark.parametrize("family", ["mae", "lcmae", "ae"])
def test_cls_at_index_0(family):
    """With no encoder blocks each latent row is norm(its own token): row 0 is the CLS token (cls_token plus
    the CLS position embedding), rows 1.. are the kept patch tokens in ids_keep order."""
    torch.manual_seed(0)
    model = create_model(family, "test", depth=0)  # no blocks: each latent row is norm(own token)
    imgs = _imgs()
    noise = torch.rand(N, L, generator=torch.Generator().manual_seed(1))
    ratio = 0.0 if family == "ae" else 0.75
    latent, mask, ids_restore = model.forward_encoder(imgs, ratio, None if family == "ae" else noise)
    cls = model.norm(model.cls_token + model.pos_embed[:, :1])
    assert torch.allclose(latent[:, 0], cls[:, 0].expand(N, -1), atol=1e-6)
    x = model.embed(imgs)
    ids_keep = torch.arange(L).expand(N, L) if family == "ae" else torch.argsort(noise, 1)[:, :KEEP]
    kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    assert torch.allclose(latent[:, 1:], model.norm(kept), atol=1e-6)
    assert not torch.allclose(latent[:, 0], latent[:, 1], atol=1e-3)


@pytest.mark.parametrize("family", ["mae", "lcmae", "ae"])
def test_bad_image_size_is_clear_value_error(family):
    model = create_model(family, "test")
    with pytest.raises(ValueError, match=r"do not fit this model.*\(N, 3, 32, 32\)"):
        model(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="do not fit this model"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="do not fit this model"):
        model(torch.randn(2, 3, 32, 24))


@pytest.mark.parametrize("family", ["mae", "lcmae", "ae"])
def test_bad_patch_size_is_clear_value_error(family):
    with pytest.raises(ValueError, match="not divisible by patch_size 8"):
        create_model(family, "test", img_size=30)
    model = create_model("mae", "test")
    with pytest.raises(ValueError, match="not divisible by the patch size 8"):
        model.patchify(torch.randn(1, 3, 30, 30))


def test_unknown_names_are_value_errors():
    with pytest.raises(ValueError, match="unknown decoder"):
        create_model("mae", "test", decoder="mlp")
    with pytest.raises(ValueError, match="unknown model family"):
        create_model("vae", "test")
    with pytest.raises(ValueError, match="unknown model size"):
        create_model("mae", "gigantic")
