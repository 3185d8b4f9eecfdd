"""The block autoencoder AE(b) of Sec. 4.2: b x b block targets centred on each patch, every token encoded, no
masking. Beyond the image border a block holds nothing: those positions are not part of the target (excluded
from the loss and from norm-pix's statistics); ``block_targets`` fills them with 0 placeholders."""

import pytest
import torch

from lcmae_core.losses import mae_loss, mae_loss_masked, normalize_patches, normalize_patches_masked
from lcmae_core.models import create_model
from lcmae_core.models.autoencoder import block_coverage, block_targets, block_validity, check_block_size

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


def test_corner_block_placeholders_are_zero():
    # the placeholders beyond the border are 0; block_validity marks them as not part of the target
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
    # every token counts in the loss, although the mask is all zeros; each over its in-image values only
    ref = mae_loss_masked(pred, model.targets(imgs), torch.ones(2, G * G), block_validity(IMG, P, 3 * P, C))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
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
    valid = block_validity(IMG, P, 3 * P, C)
    t = model.targets(imgs)
    for n in range(2):
        for tok in range(G * G):
            v = raw[n, tok][valid[tok]]  # the in-image values of the block
            want = (v - v.mean()) / (v.var(unbiased=True) + 1e-6).sqrt()
            assert torch.allclose(t[n, tok][valid[tok]], want, atol=1e-5)
            assert torch.equal(t[n, tok][~valid[tok]], torch.zeros(int((~valid[tok]).sum())))
    assert torch.allclose(t.sum(-1), torch.zeros(2, G * G), atol=1e-4)  # mean 0 over the valid values
    # per block, not per centre patch
    centre = model.center_patches(t)
    assert not torch.allclose(centre.mean(-1), torch.zeros(2, G * G), atol=1e-3)
    # and the loss uses them
    loss, pred, _ = model(imgs)
    per_token = ((pred - t) ** 2 * valid).sum(-1) / valid.sum(-1)
    assert loss.item() == pytest.approx(per_token.mean().item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------
# the border: the target is the in-image part of each block, nothing beyond it


def _validity_from_coordinates(H, W, p, b, C):
    """(L, b*b*C) bool by explicit pixel coordinates: True where the block pixel lies inside the image."""
    off = (b - p) // 2
    rows = []
    for i in range(H // p):
        for j in range(W // p):
            rows.append([0 <= i * p - off + r < H and 0 <= j * p - off + c < W
                         for r in range(b) for c in range(b) for _ in range(C)])
    return torch.tensor(rows, dtype=torch.bool)


@pytest.mark.parametrize("H,W,b", [(IMG, IMG, P), (IMG, IMG, 3 * P), (IMG, IMG, 5 * P), (IMG, IMG, 7 * P),
                                   (IMG, 2 * P, 3 * P)])
def test_block_validity_marks_exactly_the_out_of_image_positions(H, W, b):
    valid = block_validity((H, W), P, b, C)
    assert valid.dtype == torch.bool and valid.shape == ((H // P) * (W // P), b * b * C)
    assert torch.equal(valid, _validity_from_coordinates(H, W, P, b, C))
    # laid out like block_targets: an all-ones image gives ones exactly where valid, placeholders 0 elsewhere
    assert torch.equal(block_targets(torch.ones(1, C, H, W), P, b)[0] == 1, valid)
    if H == W:
        assert torch.equal(block_validity(H, P, b, C), valid)


def test_constant_image_has_no_other_value_in_the_target():
    c = -0.4242  # MNIST's background in normalised space: (0 - 0.1307) / 0.3081
    b = 3 * P
    imgs = torch.full((2, C, IMG, IMG), c)
    model = _model(b)
    t = model.targets(imgs)
    valid = model.block_valid
    assert torch.equal(valid, _validity_from_coordinates(IMG, IMG, P, b, C))
    assert torch.equal(t[:, valid], torch.full_like(t[:, valid], c))  # every target value is c, and only c
    # the top-left token: block rows/cols [-P, 2P), so 2P x 2P pixels inside the image
    assert int(valid[0].sum()) == 2 * P * 2 * P * C == 8 * 8 * 3
    assert int(valid[G + 1].sum()) == b * b * C  # token (1, 1): its block is all inside
    assert int(valid[1].sum()) == 2 * P * b * C  # token (0, 1): top row of its block outside
    # predicting c everywhere is a perfect reconstruction: the border adds nothing to predict (zero padding of
    # the normalised image would have asked the corner tokens for a frame of 0 = the mean colour)
    pred = torch.full((2, G * G, b * b * C), c, requires_grad=True)
    assert model.forward_loss(imgs, pred, torch.zeros(2, G * G)).item() == 0.0
    # whatever is predicted beyond the border is neither penalised nor trained
    pred2 = torch.where(valid, torch.full_like(t, c), torch.randn_like(t)).requires_grad_(True)
    loss = model.forward_loss(imgs, pred2 + 1e-3, torch.zeros(2, G * G))
    assert loss.item() == pytest.approx(1e-6, rel=1e-3)  # every token's mean over its valid values is (1e-3)^2
    loss.backward()
    assert torch.equal(pred2.grad[:, ~valid], torch.zeros_like(pred2.grad[:, ~valid]))
    assert (pred2.grad[:, valid] != 0).all()


def test_norm_pix_border_block_over_its_valid_values():
    # a known gradient: no two tokens' blocks alike, and a corner block's in-image part is not centred on 0
    yy, xx = torch.meshgrid(torch.arange(IMG, dtype=torch.float64), torch.arange(IMG, dtype=torch.float64),
                            indexing="ij")
    imgs = torch.stack([0.1 * yy + 0.3 * xx + ch for ch in range(C)])[None]  # (1, C, IMG, IMG)
    model = _model(5 * P, norm_pix_loss=True).double()
    valid = model.block_valid
    t = model.targets(imgs)[0]
    for tok in (0, G - 1, G * G - 1, 1, G + 1):  # corners, an edge, an interior token (all clipped at 5P)
        v = t[tok][valid[tok]]
        n = v.numel()
        assert n == int(_validity_from_coordinates(IMG, IMG, P, 5 * P, C)[tok].sum())
        assert abs(v.mean().item()) < 1e-12
        raw = block_targets(imgs, P, 5 * P)[0, tok][valid[tok]]
        var = raw.var(unbiased=True).item()
        # the estimator's unit variance: sum(v^2)/(n-1) = var/(var + eps)
        assert (v**2).sum().item() / (n - 1) == pytest.approx(var / (var + 1e-6), rel=1e-12)
        assert torch.equal(t[tok][~valid[tok]], torch.zeros(int((~valid[tok]).sum()), dtype=torch.float64))
    # the old reading (normalising the zero-padded block) gives other values at the corner
    old = normalize_patches(block_targets(imgs, P, 5 * P))[0, 0]
    assert not torch.allclose(old[valid[0]], t[0][valid[0]], atol=1e-2)


def _reference_loss(imgs, pred, p, b, norm_pix, eps=1e-6):
    """The AE(b) loss by a Python loop over tokens, from pixel coordinates: each token's mean squared error over
    the in-image pixels of its block (normalised over those pixels with norm-pix), averaged over all tokens."""
    N, Ch, H, W = imgs.shape
    off = (b - p) // 2
    pr = pred.reshape(N, -1, b, b, Ch)
    losses = []
    for n in range(N):
        for i in range(H // p):
            for j in range(W // p):
                tok = i * (W // p) + j
                x, y = [], []
                for r in range(b):
                    for c in range(b):
                        ir, ic = i * p - off + r, j * p - off + c
                        if 0 <= ir < H and 0 <= ic < W:
                            x.append(imgs[n, :, ir, ic])
                            y.append(pr[n, tok, r, c, :])
                x, y = torch.cat(x), torch.cat(y)
                if norm_pix:
                    x = (x - x.mean()) / (x.var(unbiased=True) + eps).sqrt()
                losses.append(((y - x) ** 2).mean())
    return torch.stack(losses).mean()


@pytest.mark.parametrize("b", [P, 3 * P, 5 * P])
@pytest.mark.parametrize("norm_pix", [False, True])
def test_loss_is_the_mean_over_tokens_of_the_in_image_error(b, norm_pix):
    model = _model(b, norm_pix_loss=norm_pix).double()
    imgs = torch.randn(2, C, IMG, IMG, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss, pred, _ = model(imgs)
    ref = _reference_loss(imgs, pred.detach(), P, b, norm_pix)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-10)


@pytest.mark.parametrize("norm_pix", [False, True])
def test_ae_p_loss_is_the_unmasked_mae_loss(norm_pix):
    model = _model(P, norm_pix_loss=norm_pix)
    assert model.block_valid is None  # no position beyond the border
    imgs = torch.randn(2, C, IMG, IMG, generator=torch.Generator().manual_seed(2))
    loss, pred, _ = model(imgs)
    ones = torch.ones(2, G * G)
    # exactly the previous implementation: mae_loss over every token of the (normalised) patches
    patches = model.patchify(imgs)
    prev = mae_loss(pred, normalize_patches(patches) if norm_pix else patches, ones)
    assert torch.equal(loss, prev)
    # and an all-True validity gives the same to rounding
    all_valid = block_validity(IMG, P, P, C)
    assert all_valid.all()
    t = normalize_patches_masked(patches, all_valid) if norm_pix else patches
    assert mae_loss_masked(pred, t, ones, all_valid).item() == pytest.approx(loss.item(), rel=1e-6, abs=1e-7)
    # an MAE with the same weights, every patch counted: the same loss
    mae = create_model("mae", "test", img_size=IMG, patch_size=P, norm_pix_loss=norm_pix)
    mae.load_state_dict(model.state_dict())
    latent, _, ids = mae.forward_encoder(imgs, 0.0)
    assert mae_loss(mae.forward_decoder(latent, ids), mae.targets(imgs), ones).item() == pytest.approx(
        loss.item(), rel=1e-5)


def test_masked_variants_with_no_mask_are_the_originals():
    g = torch.Generator().manual_seed(3)
    t, pred, mask = torch.randn(2, 5, 12, generator=g), torch.randn(2, 5, 12, generator=g), torch.ones(2, 5)
    assert torch.equal(normalize_patches_masked(t, None), normalize_patches(t))
    assert torch.equal(mae_loss_masked(pred, t, mask, None), mae_loss(pred, t, mask))
    # a partial validity: the same as normalising / averaging the kept values alone
    valid = torch.rand(5, 12, generator=g) > 0.4
    valid[:, :2] = True
    nt = normalize_patches_masked(t, valid)
    for n in range(2):
        for k in range(5):
            assert torch.allclose(nt[n, k][valid[k]], normalize_patches(t[n, k][valid[k]][None])[0], atol=1e-6)
    per = torch.stack([torch.stack([((pred[n, k] - t[n, k])[valid[k]] ** 2).mean() for k in range(5)])
                       for n in range(2)])
    assert mae_loss_masked(pred, t, mask, valid).item() == pytest.approx(per.mean().item(), rel=1e-6)


def test_block_valid_is_not_in_the_state_dict():
    model = _model(3 * P)
    assert model.block_valid.shape == (G * G, 9 * P * P * C)
    assert not any("block_valid" in k for k in model.state_dict())


def test_smoke_block_3p_on_28px():
    torch.manual_seed(0)
    model = create_model("ae", "test", img_size=28, patch_size=4, in_chans=1, block_size=12, norm_pix_loss=True)
    imgs = (torch.rand(3, 1, 28, 28) - 0.1307) / 0.3081
    loss, pred, mask = model(imgs)
    assert pred.shape == (3, 49, 12 * 12) and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.decoder_pred.weight.grad.abs().sum() > 0


def test_block_coverage():
    assert [round(100 * block_coverage(b, 224)) for b in (16, 48, 80, 112)] == [7, 21, 36, 50]
    assert block_coverage(112, 224) == 0.5 and block_coverage(12, 28) == pytest.approx(3 / 7)
    assert block_coverage(36, 28) > 1  # a block wider than the image: not clipped
    for b, s in ((0, 224), (16, 0), (-16, 224)):
        with pytest.raises(ValueError, match="positive"):
            block_coverage(b, s)
