"""Eq. 7 (S^attn) and Eq. 8 (S^sim): direct and streaming against a loop over pairs; self-similarity is 1."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from lcmae_core.analysis import (AttentionSimilarityMeter, affinity_similarity, attention_map_similarity,
                                 attention_similarity_curve, attention_stats_curves, decoder_attention_measures,
                                 decoder_layer_features, feature_affinity, semantic_similarity_curve)
from lcmae_core.models import create_model


def loop_eq7(maps):
    I = maps.shape[0]
    total = 0.0
    for i, j in itertools.permutations(range(I), 2):
        total += F.cosine_similarity(maps[i].flatten().double(), maps[j].flatten().double(), dim=0).item()
    return total / (I * (I - 1))


def test_identical_maps_give_one():
    a = torch.rand(1, 4, 2, 9).expand(5, -1, -1, -1)
    torch.testing.assert_close(attention_map_similarity(a), torch.tensor(1.0, dtype=torch.float64))


def test_direct_and_streaming_match_the_pairwise_loop():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(11, 3, 2, 7, generator=g).softmax(-1)
    want = loop_eq7(maps)
    assert abs(attention_map_similarity(maps).item() - want) < 1e-10
    meter = AttentionSimilarityMeter(1)
    for chunk in maps.split(4):
        meter.update(0, chunk)
    assert abs(meter.value()[0].item() - want) < 1e-10
    # orthogonal maps give 0
    eye = torch.eye(4).reshape(4, 1, 1, 4)
    assert attention_map_similarity(eye).item() == 0.0


def loop_centered(maps):
    """S^c by the definition: Eq. 7's pairwise mean cosine on A - 1/n, a zero map counting 0 against any."""
    c = maps.double() - 1.0 / maps.shape[-1]
    I = c.shape[0]
    total = 0.0
    for i, j in itertools.permutations(range(I), 2):
        a, b = c[i].flatten(), c[j].flatten()
        if a.norm() > 1e-6 and b.norm() > 1e-6:  # a uniform map (up to float32 rounding) is the zero map
            total += F.cosine_similarity(a, b, dim=0).item()
    return total / (I * (I - 1))


def test_flatness_free_similarity():
    """S^c: uniform maps are alike in Eq. 7 (1) but not in S^c (0); the same pattern in every image is 1 in both;
    the streaming meter matches the pairwise definition, zero (uniform) maps included."""
    flat = torch.full((5, 3, 2, 9), 1 / 9)
    assert attention_map_similarity(flat).item() == pytest.approx(1.0)
    assert attention_map_similarity(flat, centered=True).item() == 0.0
    peaked = torch.zeros(5, 3, 2, 9)
    peaked[..., 4] = 1.0
    assert attention_map_similarity(peaked, centered=True).item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(1)
    maps = torch.cat([torch.rand(6, 3, 2, 9, generator=g).softmax(-1), flat[:2]])  # two uniform images among them
    want = loop_centered(maps)
    assert abs(attention_map_similarity(maps, centered=True).item() - want) < 1e-10
    meter = AttentionSimilarityMeter(1, centered=True)
    for chunk in maps.split(3):
        meter.update(0, chunk)
    assert abs(meter.value()[0].item() - want) < 1e-10
    # nearly flat random maps: Eq. 7 near 1, S^c far below it
    near = (torch.rand(8, 3, 2, 9, generator=g) * 0.05).softmax(-1)
    assert attention_map_similarity(near).item() > 0.99 and attention_map_similarity(near, centered=True) < 0.5


def test_eq7_curve_on_a_model():
    torch.manual_seed(0)
    model = create_model("mae", "test", decoder_depth=2).eval()
    imgs = torch.randn(7, 3, 32, 32)
    s = attention_similarity_curve(model, imgs, batch_size=3, seed=1)
    assert s.shape == (2,) and bool(((s > 0) & (s <= 1 + 1e-9)).all())
    torch.testing.assert_close(s, attention_similarity_curve(model, imgs, batch_size=7, seed=1))
    # identical images give identical maps: S = 1
    same = imgs[:1].expand(4, -1, -1, -1)
    torch.testing.assert_close(attention_similarity_curve(model, same, seed=1),
                               torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="identical mask"):
        attention_similarity_curve(model, imgs, mask=torch.rand(7, 16).round())


def test_one_pass_decoder_measures_equal_the_separate_curves():
    torch.manual_seed(0)
    model = create_model("mae", "test", decoder_depth=2).eval()
    imgs = torch.randn(9, 3, 32, 32)
    mask = (torch.arange(16) % 3 != 0).float()
    got = decoder_attention_measures(model, imgs, mask, batch_size=4)
    torch.testing.assert_close(got["s_attn"], attention_similarity_curve(model, imgs, mask=mask))
    torch.testing.assert_close(got["s_attn_centered"], attention_similarity_curve(model, imgs, mask=mask,
                                                                                  centered=True))
    assert bool((got["s_attn_centered"] < got["s_attn"]).all())
    want = attention_stats_curves(model, imgs, "decoder", mask=mask, queries="masked")
    torch.testing.assert_close(got["distance"], want["distance"])
    torch.testing.assert_close(got["entropy"], want["entropy"])
    assert got["distance"].shape == (2, model.decoder_blocks[0].attn.num_heads)
    with pytest.raises(ValueError, match="no images"):
        decoder_attention_measures(model, torch.empty(0, 3, 32, 32), mask)


def test_affinity_and_binarisation():
    f = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]])
    w = feature_affinity(f)
    torch.testing.assert_close(w, torch.tensor([[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]))
    wb = feature_affinity(torch.tensor([[[1.0, 0.0], [0.1, 1.0]]]), tau=0.2)
    torch.testing.assert_close(wb, torch.tensor([[[1.0, 1e-5], [1e-5, 1.0]]]))
    torch.testing.assert_close(affinity_similarity(w, w), torch.ones(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="same patch grid"):
        affinity_similarity(w, w[:, :2, :2])


def test_eq8_of_a_model_against_itself_is_one():
    torch.manual_seed(0)
    model = create_model("mae", "test", decoder_depth=2).eval()
    imgs = torch.randn(5, 3, 32, 32)
    mask = torch.zeros(16)
    mask[:12] = 1

    def last_decoder_layer(x):  # the reference: this model's own last decoder layer, same mask
        return decoder_layer_features(model, x, mask)[-1]

    for tau in (None, 0.2):
        s = semantic_similarity_curve(model, last_decoder_layer, imgs, mask=mask, tau=tau, batch_size=2)
        assert s.shape == (2,)
        assert abs(s[-1].item() - 1.0) < 1e-6
        assert s[0].item() < 1.0 - 1e-4
    # a model as reference: its encoder's final features
    s = semantic_similarity_curve(model, model, imgs, mask=mask)
    assert s.shape == (2,) and bool((s.abs() <= 1 + 1e-9).all())
    gauss = create_model("mae", "test", decoder="gaussian").eval()
    assert semantic_similarity_curve(gauss, model, imgs, mask=mask).shape == (1,)


def test_reference_keys_are_the_last_blocks_keys():
    import timm
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2).eval()
    imgs = torch.randn(2, 3, 32, 32)
    from lcmae_core.analysis import final_patch_features
    keys = final_patch_features(vit, imgs, "keys")
    assert keys.shape == (2, 16, 192)
    tokens = vit.forward_features(imgs)
    x = vit.blocks[-1].norm1(vit.blocks[0](vit.norm_pre(vit._pos_embed(vit.patch_embed(imgs)))))
    torch.testing.assert_close(keys, vit.blocks[-1].attn.qkv(x)[:, 1:, 192:384])
    torch.testing.assert_close(final_patch_features(vit, imgs), tokens[:, 1:])


def test_eq7_per_query_matches_the_pairwise_loop_on_recorded_maps():
    from lcmae_core.analysis import decoder_attention, query_similarity_curves, shared_mask

    torch.manual_seed(0)
    model = create_model("mae", "test", decoder_depth=3).eval()
    imgs = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mask = shared_mask(model.num_patches, 0.75, seed=3)
    positions = mask.nonzero()[:2, 0].tolist()
    got = query_similarity_curves(model, imgs, mask, positions, batch_size=4)
    got_c = query_similarity_curves(model, imgs, mask, positions, batch_size=4, centered=True)
    assert got.shape == got_c.shape == (2, 3)
    maps = decoder_attention(model, imgs, mask).maps  # layers x (B, H, 1 + L, 1 + L)
    for j, p in enumerate(positions):
        for layer, a in enumerate(maps):
            want = loop_eq7(a[:, :, p + 1, 1:])  # (B, H, n): that query, CLS key dropped
            assert abs(got[j, layer].item() - want) < 1e-6  # float32 maps, batched differently
            want_c = loop_centered(a[:, :, p + 1, 1:].unsqueeze(1))  # (B, 1, H, n)
            assert abs(got_c[j, layer].item() - want_c) < 1e-6
    # identical images: every query's maps agree exactly
    same = imgs[:1].expand(3, -1, -1, -1)
    torch.testing.assert_close(query_similarity_curves(model, same, mask, positions),
                               torch.ones(2, 3, dtype=torch.float64))
    visible = int((mask == 0).nonzero()[0, 0])
    with pytest.raises(ValueError, match="must all be masked"):
        query_similarity_curves(model, imgs, mask, [visible])
