"""Our ``MaskedAutoencoderViT`` is facebookresearch/mae's: same keys and shapes, same numbers.

The numbers come from an independent functional reference (``tests/reference_mae.py``), written from the math,
which reads a state dict in the official key format. The parameter counts below were measured on the official
``models_mae.py`` (patched only to run on timm 1.0: ``qk_scale`` dropped, ``np.float`` -> ``float``).
"""

from __future__ import annotations

import math

import pytest
import torch

from lcmae_core.models import (SIZES, MaskedAutoencoderViT, create_model, mae_vit_base_patch16,
                               mae_vit_huge_patch14, mae_vit_large_patch16)
from lcmae_core.pos_embed import sincos_2d

from reference_mae import reference_loss, reference_mae_forward


# ---------------------------------------------------------------------------------------------------------------
# (a) keys, shapes, parameter counts

def official_keys_and_shapes(img_size=224, patch=16, C=3, D=768, depth=12, Dd=512, ddepth=8, mlp_ratio=4.0):
    """The official state dict, in order, from the official naming (root parameters first, then submodules)."""
    L = (img_size // patch) ** 2
    H, Hd = int(D * mlp_ratio), int(Dd * mlp_ratio)

    def block(prefix, d, h):
        return [
            (f"{prefix}.norm1.weight", (d,)), (f"{prefix}.norm1.bias", (d,)),
            (f"{prefix}.attn.qkv.weight", (3 * d, d)), (f"{prefix}.attn.qkv.bias", (3 * d,)),
            (f"{prefix}.attn.proj.weight", (d, d)), (f"{prefix}.attn.proj.bias", (d,)),
            (f"{prefix}.norm2.weight", (d,)), (f"{prefix}.norm2.bias", (d,)),
            (f"{prefix}.mlp.fc1.weight", (h, d)), (f"{prefix}.mlp.fc1.bias", (h,)),
            (f"{prefix}.mlp.fc2.weight", (d, h)), (f"{prefix}.mlp.fc2.bias", (d,)),
        ]

    out = [("cls_token", (1, 1, D)), ("pos_embed", (1, L + 1, D)),
           ("mask_token", (1, 1, Dd)), ("decoder_pos_embed", (1, L + 1, Dd)),
           ("patch_embed.proj.weight", (D, C, patch, patch)), ("patch_embed.proj.bias", (D,))]
    for i in range(depth):
        out += block(f"blocks.{i}", D, H)
    out += [("norm.weight", (D,)), ("norm.bias", (D,)),
            ("decoder_embed.weight", (Dd, D)), ("decoder_embed.bias", (Dd,))]
    for j in range(ddepth):
        out += block(f"decoder_blocks.{j}", Dd, Hd)
    out += [("decoder_norm.weight", (Dd,)), ("decoder_norm.bias", (Dd,)),
            ("decoder_pred.weight", (patch * patch * C, Dd)), ("decoder_pred.bias", (patch * patch * C,))]
    return out


def test_base_state_dict_matches_official_naming():
    with torch.device("meta"):
        model = mae_vit_base_patch16()
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    expected = official_keys_and_shapes()
    assert len(expected) == 254  # measured on the official mae_vit_base_patch16_dec512d8b
    assert got == expected


def test_test_size_state_dict_matches_official_naming():
    cfg = SIZES["test"]
    model = create_model("mae", "test")
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == official_keys_and_shapes(cfg["img_size"], cfg["patch_size"], 3, cfg["embed_dim"], cfg["depth"],
                                           cfg["decoder_embed_dim"], cfg["decoder_depth"], cfg["mlp_ratio"])


@pytest.mark.parametrize("factory,count", [
    # measured on the official models_mae.py factories (sum of p.numel() over parameters(), decoder included)
    (mae_vit_base_patch16, 111_907_840),
    (mae_vit_large_patch16, 329_541_888),
    (mae_vit_huge_patch14, 657_074_508),
])
def test_parameter_counts_match_official(factory, count):
    with torch.device("meta"):
        model = factory()
    assert sum(p.numel() for p in model.parameters()) == count
    assert sum(v.numel() for v in model.state_dict().values()) == count


def test_fixed_and_trainable_parameters():
    model = create_model("mae", "test")
    fixed = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert fixed == {"pos_embed", "decoder_pos_embed"}


# ---------------------------------------------------------------------------------------------------------------
# (b) numbers against the functional reference

def _randomise(model: MaskedAutoencoderViT, seed: int) -> dict:
    """Give every tensor (norms, biases, tokens too) non-trivial values, so that no term can hide behind a
    zero or a one; returns the state dict."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("pos_embed"):
            sd[k] = v.clone()
        elif k.endswith("norm1.weight") or k.endswith("norm2.weight") or k.endswith("norm.weight"):
            sd[k] = 1.0 + 0.2 * torch.randn(v.shape, generator=g)
        else:
            sd[k] = v + 0.02 * torch.randn(v.shape, generator=g)
    model.load_state_dict(sd, strict=True)
    return sd


@pytest.mark.parametrize("norm_pix", [False, True])
@pytest.mark.parametrize("mask_ratio", [0.75, 0.5, 0.3])
def test_small_model_matches_reference(norm_pix, mask_ratio):
    torch.manual_seed(0)
    model = create_model("mae", "test", norm_pix_loss=norm_pix).eval()
    sd = _randomise(model, 1)
    g = torch.Generator().manual_seed(2)
    imgs = torch.randn(3, 3, 32, 32, generator=g)
    noise = torch.rand(3, model.num_patches, generator=g)
    with torch.no_grad():
        loss, pred, mask = model(imgs, mask_ratio, noise)
        rloss, rpred, rmask = reference_mae_forward(sd, imgs, noise, mask_ratio, norm_pix,
                                                    SIZES["test"]["num_heads"], SIZES["test"]["decoder_num_heads"])
    assert torch.equal(mask, rmask)
    assert pred.shape == rpred.shape == (3, 16, 8 * 8 * 3)
    assert (pred - rpred).abs().max().item() < 1e-5
    assert abs(loss.item() - rloss.item()) < 1e-5


def test_small_model_matches_reference_in_float64():
    """In double precision the two agree to ~1e-12: any difference at 1e-5 in float32 is rounding, not math."""
    model = create_model("mae", "test", norm_pix_loss=True).double().eval()
    sd = {k: v.double() for k, v in _randomise(model, 3).items()}
    g = torch.Generator().manual_seed(4)
    imgs = torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64)
    noise = torch.rand(2, model.num_patches, generator=g)
    with torch.no_grad():
        loss, pred, mask = model(imgs, 0.75, noise)
        rloss, rpred, rmask = reference_mae_forward(sd, imgs, noise, 0.75, True, 2, 2)
    assert torch.equal(mask, rmask)
    assert (pred - rpred).abs().max().item() < 1e-10
    assert abs(loss.item() - rloss.item()) < 1e-10


def test_vit_base_matches_reference():
    """ViT-B/16 at its official initialisation, one image: a forward with norm-pix on, then the plain loss on the
    same prediction (the forward computes it with forward_loss too); the reference does the same."""
    torch.manual_seed(0)
    model = mae_vit_base_patch16(norm_pix_loss=True).eval()
    sd = model.state_dict()
    g = torch.Generator().manual_seed(5)
    imgs = torch.randn(1, 3, 224, 224, generator=g)
    noise = torch.rand(1, 196, generator=g)
    with torch.no_grad():
        loss_npl, pred, mask = model(imgs, 0.75, noise)
        rloss_npl, rpred, rmask = reference_mae_forward(sd, imgs, noise, 0.75, True, 12, 16)
        model.norm_pix_loss = False
        loss_plain = model.forward_loss(imgs, pred, mask)
        rloss_plain = reference_loss(imgs, rpred, rmask, 16, False)
    assert torch.equal(mask, rmask)
    assert int(mask.sum()) == 196 - 49
    assert (pred - rpred).abs().max().item() < 1e-5
    assert abs(loss_npl.item() - rloss_npl.item()) < 1e-5
    assert abs(loss_plain.item() - rloss_plain.item()) < 1e-5
    assert abs(loss_plain.item() - loss_npl.item()) > 1e-3  # the two targets do differ


def test_default_noise_is_drawn_like_the_official_code():
    """Without noise, the model draws torch.rand(N, L) at masking time, as the official random_masking does:
    the same seed gives the same mask as passing that noise explicitly."""
    model = create_model("mae", "test").eval()
    imgs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.manual_seed(7)
        loss1, pred1, mask1 = model(imgs, 0.75)
        torch.manual_seed(7)
        noise = torch.rand(2, model.num_patches)
        loss2, pred2, mask2 = model(imgs, 0.75, noise)
    assert torch.equal(mask1, mask2) and torch.equal(pred1, pred2) and torch.equal(loss1, loss2)


# ---------------------------------------------------------------------------------------------------------------
# (c) masking

@pytest.mark.parametrize("mask_ratio", [0.0, 0.25, 0.5, 0.75, 0.9, 0.95])
def test_visible_positions_are_the_smallest_noise(mask_ratio):
    model = create_model("mae", "test")
    N, L, D = 4, model.num_patches, 5
    g = torch.Generator().manual_seed(11)
    noise = torch.rand(N, L, generator=g)
    x = torch.randn(N, L, D, generator=g)
    x_masked, mask, ids_restore = model.random_masking(x, mask_ratio, noise)
    len_keep = int(L * (1 - mask_ratio))
    assert x_masked.shape == (N, len_keep, D)
    assert mask.shape == (N, L) and int(mask.sum()) == N * (L - len_keep)
    for n in range(N):
        ranked = sorted(range(L), key=lambda i: noise[n, i].item())
        keep = ranked[:len_keep]
        assert {i for i in range(L) if mask[n, i] == 0} == set(keep)
        # the visible tokens enter the encoder in ascending order of noise
        assert torch.equal(x_masked[n], x[n, keep])
        # ids_restore: position l sits at rank ids_restore[l] in [visible..., masked...]
        assert [int(ids_restore[n, i]) for i in ranked] == list(range(L))


def test_mask_ratio_counts_follow_int_truncation():
    model = create_model("mae", "test")
    for ratio in (0.1, 0.33, 0.6, 0.7, 0.74):
        _, mask, _ = model.random_masking(torch.zeros(1, 16, 1), ratio, torch.rand(1, 16))
        assert int((mask == 0).sum()) == int(16 * (1 - ratio))


# ---------------------------------------------------------------------------------------------------------------
# (d) position embeddings

def loop_sincos(D: int, g: int) -> torch.Tensor:
    """(1 + g*g, D), channel by channel: the first D/2 channels encode the column, the last D/2 the row; in each
    half, D/4 sines then D/4 cosines of pos * 10000^(-k / (D/4)); row 0 (CLS) is zero."""
    out = torch.zeros(1 + g * g, D, dtype=torch.float64)
    q = D // 4
    for row in range(g):
        for col in range(g):
            idx = 1 + row * g + col
            for ch in range(D):
                coord = col if ch < D // 2 else row
                k = ch % (D // 2)
                fn, k = (math.sin, k) if k < q else (math.cos, k - q)
                out[idx, ch] = fn(coord * 10000.0 ** (-k / q))
    return out


@pytest.mark.parametrize("D,g", [(4, 1), (4, 3), (8, 2), (16, 4), (12, 5)])
def test_sincos_matches_per_channel_formula(D, g):
    expected = loop_sincos(D, g)
    assert torch.allclose(sincos_2d(D, g, cls_token=True).double(), expected, atol=1e-6)
    assert torch.allclose(sincos_2d(D, g).double(), expected[1:], atol=1e-6)


def test_model_position_embeddings_are_fixed_sincos():
    model = create_model("mae", "test")
    g = model.grid_size[0]
    assert torch.allclose(model.pos_embed[0].double(), loop_sincos(model.pos_embed.shape[-1], g), atol=1e-6)
    assert torch.allclose(model.decoder_pos_embed[0].double(),
                          loop_sincos(model.decoder_pos_embed.shape[-1], g), atol=1e-6)
    assert torch.all(model.pos_embed[0, 0] == 0) and torch.all(model.decoder_pos_embed[0, 0] == 0)
    assert not model.pos_embed.requires_grad and not model.decoder_pos_embed.requires_grad


def test_first_half_is_the_column():
    """Moving one patch right changes only the first half; moving one patch down only the second half."""
    D, g = 16, 4
    pe = sincos_2d(D, g)
    right, down = pe[1] - pe[0], pe[g] - pe[0]
    assert right[D // 2:].abs().max() == 0 and right[: D // 2].abs().max() > 0
    assert down[: D // 2].abs().max() == 0 and down[D // 2:].abs().max() > 0


# ---------------------------------------------------------------------------------------------------------------
# (e) patchify

def test_patchify_layout_on_a_hand_built_image():
    model = create_model("mae", "test")  # 32 px, p = 8, 4 x 4 grid
    p, C, H = 8, 3, 32
    img = torch.zeros(1, C, H, H)
    for c in range(C):
        for y in range(H):
            for x in range(H):
                img[0, c, y, x] = c * 10000 + y * 100 + x  # every value names its pixel
    patches = model.patchify(img)
    assert patches.shape == (1, 16, p * p * C)
    for i in range(4):
        for j in range(4):
            for u in range(p):
                for v in range(p):
                    for c in range(C):
                        assert patches[0, i * 4 + j, (u * p + v) * C + c] == c * 10000 + (i * p + u) * 100 + j * p + v


def test_unpatchify_inverts_patchify():
    model = create_model("mae", "test")
    imgs = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.unpatchify(model.patchify(imgs)), imgs)
    x = torch.randn(2, 16, 8 * 8 * 3)
    assert torch.equal(model.patchify(model.unpatchify(x)), x)
