"""The block autoencoder AE(b) of Sec. 4.2: b x b block targets centred on each patch, zero padded at the
border, every token encoded, no masking."""

import pytest
import torch

from lcmae_core.losses import mae_loss
from lcmae_core.models import create_model
from lcmae_core.models.autoencoder import block_targets, check_block_size

P, IMG, C = 4, 16, 3
G = IMG // P


def _image(N=2):
    # every pixel distinct and nonzero, so a misplaced or zeroed pixel shows
    return torch.arange(N * C * IMG * IMG, dtype=torch.float64).reshape(N, C, IMG, IMG) + 1.0


def _model(block, **kw):
    torch.manual_seed(0)
    return create_model("ae", "test", img_size=IMG, patch_size=P, block_size=block, **kw)


def test_block_equal_to_patch_is_patchify():
    imgs = torch.randn(2, C, IMG, IMG)
    model = _model(P)
    assert torch.equal(block_targets(imgs, P, P), model.patchify(imgs))
    assert torch.equal(model.targets(imgs), model.patchify(imgs))


def _block(t, token, b):
    return t[:, token].reshape(t.shape[0], b, b, C)  # (N, row, col, c) as patchify flattens


def test_corner_block_zero_padded():
    imgs = _image()
    b = 3 * P
    t = block_targets(imgs, P, b)
    assert t.shape == (2, G * G, b * b * C)
    blk = _block(t, 0, b)  # top-left token: block covers image rows/cols [-P, 2P)
    assert torch.equal(blk[:, :P, :, :], torch.zeros(2, P, b, C))  # above the image
    assert torch.equal(blk[:, :, :P, :], torch.zeros(2, b, P, C))  # left of the image
    for n in range(2):
        for r in range(P, b):
            for c in range(P, b):
                for ch in range(C):
                    assert blk[n, r, c, ch].item() == imgs[n, ch, r - P, c - P].item()
    # the bottom-right token: the out-of-image part is below and to the right
    last = G * G - 1
    blk = _block(t, last, b)
    assert torch.equal(blk[:, 2 * P:, :, :], torch.zeros(2, P, b, C))
    assert torch.equal(blk[:, :, 2 * P:, :], torch.zeros(2, b, P, C))
    assert torch.equal(blk[:, :2 * P, :2 * P, :], imgs[:, :, IMG - 2 * P:, IMG - 2 * P:].permute(0, 2, 3, 1))
    # the top-right token (row 0, last column)
    blk = _block(t, G - 1, b)
    assert torch.equal(blk[:, :P], torch.zeros(2, P, b, C))
    assert torch.equal(blk[:, :, 2 * P:], torch.zeros(2, b, P, C))
    assert torch.equal(blk[:, P:, :2 * P], imgs[:, :, :2 * P, IMG - 2 * P:].permute(0, 2, 3, 1))


@pytest.mark.parametrize("b", [3 * P, 5 * P])
def test_interior_block_centred(b):
    imgs = _image(1)
    t = block_targets(imgs, P, b)
    r0, c0 = 2, 1  # an interior token
    token = r0 * G + c0
    blk = _block(t, token, b)[0]  # (b, b, C)
    off = (b - P) // 2
    for r in range(b):
        for c in range(b):
            ir, ic = r0 * P - off + r, c0 * P - off + c
            for ch in range(C):
                want = imgs[0, ch, ir, ic].item() if 0 <= ir < IMG and 0 <= ic < IMG else 0.0
                assert blk[r, c, ch].item() == want
    # its centre p x p is the token's own patch
    centre = blk[off:off + P, off:off + P]
    assert torch.equal(centre, imgs[0, :, r0 * P:(r0 + 1) * P, c0 * P:(c0 + 1) * P].permute(1, 2, 0))


def test_interior_3p_block_fully_inside():
    imgs = _image(1)
    t = block_targets(imgs, P, 3 * P)
    blk = _block(t, 1 * G + 1, 3 * P)[0]  # token (1, 1): block = image rows/cols [0, 3P)
    assert torch.equal(blk, imgs[0, :, :3 * P, :3 * P].permute(1, 2, 0))


@pytest.mark.parametrize("b", [P, 3 * P, 5 * P, 7 * P])
def test_block_size_accepted(b):
    assert check_block_size(b, P) == b
    assert _model(b).decoder_pred.out_features == b * b * C


@pytest.mark.parametrize("b", [2 * P, 4 * P, P + 1, 3 * P - 2, P // 2, 0])
def test_block_size_rejected(b):
    with pytest.raises(ValueError, match="odd multiple of the patch size"):
        check_block_size(b, P)
    with pytest.raises(ValueError, match="odd multiple of the patch size"):
        _model(b)
    with pytest.raises(ValueError, match="odd multiple"):
        block_targets(torch.zeros(1, C, IMG, IMG), P, b)


def test_ae_encodes_every_token():
    model = _model(3 * P)
    imgs = torch.randn(2, C, IMG, IMG)
    latent, mask, ids_restore = model.forward_encoder(imgs)
    assert latent.shape == (2, 1 + G * G, model.cls_token.shape[-1])
    assert torch.equal(mask, torch.zeros(2, G * G))
    loss, pred, mask = model(imgs)
    assert torch.equal(mask, torch.zeros(2, G * G))
    # every token counts in the loss, although the mask is all zeros
    assert loss.item() == pytest.approx(mae_loss(pred, model.targets(imgs), torch.ones(2, G * G)).item(), rel=1e-6)
    assert loss.item() > 0


def test_ae_refuses_masking():
    model = _model(P)
    imgs = torch.randn(1, C, IMG, IMG)
    with pytest.raises(ValueError, match="does not mask"):
        model(imgs, 0.5)
    with pytest.raises(ValueError, match="does not mask"):
        model.compute_losses(imgs, 0.75)
    with pytest.raises(ValueError, match="does not mask"):
        model.forward_encoder(imgs, 0.1)


def test_center_patches_recovers_patch():
    model = _model(5 * P)
    imgs = torch.randn(2, C, IMG, IMG)
    t = block_targets(imgs, P, 5 * P)
    assert torch.equal(model.center_patches(t), model.patchify(imgs))
    assert torch.equal(model.unpatchify(model.center_patches(t)), imgs)
    pred = model(imgs)[1]
    assert model.unpatchify(model.center_patches(pred)).shape == imgs.shape


def test_norm_pix_per_block():
    model = _model(3 * P, norm_pix_loss=True)
    imgs = torch.rand(2, C, IMG, IMG)
    raw = block_targets(imgs, P, 3 * P)
    t = model.targets(imgs)
    expected = (raw - raw.mean(-1, keepdim=True)) / (raw.var(-1, keepdim=True) + 1e-6).sqrt()
    assert torch.allclose(t, expected, atol=1e-5)
    assert torch.allclose(t.mean(-1), torch.zeros(2, G * G), atol=1e-5)
    # per block, over the whole block (padding zeros included), not per centre patch
    centre = model.center_patches(t)
    assert not torch.allclose(centre.mean(-1), torch.zeros(2, G * G), atol=1e-3)
    # and the loss uses them
    loss, pred, _ = model(imgs)
    assert loss.item() == pytest.approx(((pred - t) ** 2).mean().item(), rel=1e-5)
