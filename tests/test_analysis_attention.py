"""Attention extraction: outputs unchanged (bitwise), maps correct, hooks removed, masked-query rows, shared masks."""

import pytest
import timm
import torch

from lcmae_core.analysis import (AttentionRecorder, decoder_attention, encoder_attention, masked_query_rows,
                                 query_attention_maps)
from lcmae_core.masking import masking_from_noise, noise_for_mask, shared_noise
from lcmae_core.models import create_model


@pytest.fixture(scope="module")
def mae():
    torch.manual_seed(0)
    return create_model("mae", "test", decoder_depth=2).eval()


@pytest.fixture(scope="module")
def imgs():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def hook_count(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_encoder_outputs_bitwise_identical(mae, imgs):
    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(2))
    plain = mae.forward_encoder(imgs, 0.75, noise)[0]
    with AttentionRecorder(mae.blocks) as rec:
        hooked = mae.forward_encoder(imgs, 0.75, noise)[0]
    assert torch.equal(plain, hooked)
    assert all(a.shape == (3, 2, 5, 5) for a in rec.maps)
    assert hook_count(mae) == 0


def test_decoder_outputs_bitwise_identical(mae, imgs):
    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(3))
    latent, mask, ids_restore = mae.forward_encoder(imgs, 0.75, noise)
    plain = mae.forward_decoder(latent, ids_restore)
    with AttentionRecorder(mae.decoder_blocks) as rec:
        hooked = mae.forward_decoder(latent, ids_restore)
    assert torch.equal(plain, hooked)
    assert len(rec.maps) == 2 and rec.maps[0].shape == (3, 2, 17, 17)
    # decoder_attention (which feeds the visible tokens in image order) matches the unhooked model fed alike
    res = decoder_attention(mae, imgs, mask)
    latent, _, ids_restore = mae.forward_encoder(imgs, 0.75, noise_for_mask(mask))
    assert torch.equal(res.output, mae.forward_decoder(latent, ids_restore))
    assert hook_count(mae) == 0


def test_timm_vit_outputs_bitwise_identical(imgs):
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=3).eval()
    plain = vit(imgs)
    with AttentionRecorder(vit.blocks) as rec:
        hooked = vit(imgs)
    assert torch.equal(plain, hooked)
    assert len(rec.maps) == 3 and rec.maps[0].shape == (3, 3, 17, 17)
    res = encoder_attention(vit, imgs)
    assert res.num_prefix_tokens == 1 and torch.equal(res.positions[0], torch.arange(16))
    assert hook_count(vit) == 0


def test_maps_are_probabilities_that_reproduce_the_module_output(mae, imgs):
    """A @ V, projected, must equal what the (fused) attention module returned: the maps are the real ones."""
    attn = mae.blocks[0].attn
    seen = {}
    h = attn.register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    try:
        res = encoder_attention(mae, imgs)
    finally:
        h.remove()
    a = res.maps[0]  # (B, H, N, N)
    torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]))
    x = seen["x"]
    B, N, C = x.shape
    v = attn.qkv(x).reshape(B, N, 3, 2, C // 2)[:, :, 2].transpose(1, 2)  # (B, H, N, d)
    out = attn.proj((a @ v).transpose(1, 2).reshape(B, N, C))
    torch.testing.assert_close(out, seen["out"], rtol=1e-5, atol=1e-5)


def test_encoder_without_mask_sees_every_token_in_order(mae, imgs):
    res = encoder_attention(mae, imgs)
    assert res.maps[0].shape == (3, 2, 17, 17) and res.mask is None
    assert torch.equal(res.positions, torch.arange(16).expand(3, 16))
    mask = torch.zeros(16)
    mask[[0, 5, 6, 15]] = 1
    res = encoder_attention(mae, imgs, mask)
    assert res.maps[0].shape == (3, 2, 13, 13)
    assert torch.equal(res.positions[0], torch.tensor([i for i in range(16) if i not in (0, 5, 6, 15)]))


def test_masked_query_rows_select_the_masked_positions():
    B, H, L = 2, 3, 9
    attn = torch.arange(B * H * (L + 1) ** 2, dtype=torch.float32).reshape(B, H, L + 1, L + 1)
    mask = torch.zeros(B, L)
    mask[0, [1, 4, 8]] = 1
    mask[1, [0, 2, 3]] = 1
    rows = masked_query_rows(attn, mask, 1)
    assert rows.shape == (B, H, 3, L + 1)
    for b, pos in enumerate([[1, 4, 8], [0, 2, 3]]):
        for j, p in enumerate(pos):
            assert torch.equal(rows[b, :, j], attn[b, :, p + 1])
    bad = mask.clone()
    bad[0, 0] = 1
    with pytest.raises(ValueError, match="same number of masked"):
        masked_query_rows(attn, bad, 1)


def test_shared_mask_reaches_every_image(mae, imgs):
    m = masking_from_noise(shared_noise(1, 16, generator=torch.Generator().manual_seed(4)), 0.75).mask[0]  # (L,)
    res = decoder_attention(mae, imgs, m)
    assert torch.equal(res.mask, m.expand(3, 16))
    # the same prediction as the model's own forward with noise that reproduces the mask
    _, pred, mask = mae(imgs, 0.75, noise_for_mask(m.expand(3, 16)))
    assert torch.equal(mask, res.mask) and torch.equal(pred, res.output)
    with pytest.raises(ValueError, match="mask must be"):
        decoder_attention(mae, imgs, torch.zeros(15))


def test_query_attention_maps_pick_rows(mae, imgs):
    m = torch.zeros(16)
    m[[2, 3, 7, 9, 10, 11, 12, 13, 14, 15, 0, 1]] = 1
    full = decoder_attention(mae, imgs, m).maps
    q = query_attention_maps(mae, imgs, m, [[0, 2], [2, 13]], layers=[1, 0])
    assert q.shape == (2, 2, 2, 17)
    assert torch.equal(q[1, 0], full[1][2, :, 14]) and torch.equal(q[0, 1], full[0][0, :, 3])
    with pytest.raises(ValueError, match="do not exist"):
        query_attention_maps(mae, imgs, m, [[0, 2]], layers=[5])


def test_local_decoder_has_no_attention(imgs):
    model = create_model("mae", "test", decoder="conv")
    with pytest.raises(ValueError, match="no transformer decoder"):
        decoder_attention(model, imgs, torch.zeros(16))


def test_shared_mask_and_auto_queries():
    from lcmae_core.analysis import pick_masked_queries, shared_mask

    m = shared_mask(16, 0.75, seed=4)
    assert m.shape == (16,) and int(m.sum()) == 12
    g = torch.Generator().manual_seed(4)  # the draw attention_similarity_curve makes by default
    assert torch.equal(m, masking_from_noise(torch.rand(1, 16, generator=g), 0.75).mask[0])
    q = pick_masked_queries(m, 3, seed=1)
    assert len(set(q)) == 3 and all(m[p] == 1 for p in q)
    assert q == pick_masked_queries(m, 3, seed=1)
    with pytest.raises(ValueError, match="only 12 masked"):
        pick_masked_queries(m, 13)
