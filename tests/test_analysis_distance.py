"""Attention distance (Figs. 5, 6, A.1): checked against grids computed independently with plain loops."""

import math

import pytest
import torch

from lcmae_core.analysis import attention_distance, attention_distance_curves, patch_attention
from lcmae_core.analysis.distance import attention_distance_per_query
from lcmae_core.models import create_model


def pairwise_mean_distance(g: int, p: float) -> float:
    """Mean Euclidean distance over all ordered (query, key) pairs of a g x g grid, self pairs included."""
    cells = [(r, c) for r in range(g) for c in range(g)]
    total = 0.0
    for (r1, c1) in cells:
        for (r2, c2) in cells:
            total += math.hypot((r1 - r2) * p, (c1 - c2) * p)
    return total / len(cells) ** 2


def with_prefix(a: torch.Tensor, prefix: int, prefix_mass: float = 0.0) -> torch.Tensor:
    """(B, H, n, n) patch attention -> (B, H, P + n, P + n): prefix rows/cols added, prefix_mass of each patch row
    moved onto the prefix columns."""
    B, H, n, _ = a.shape
    out = torch.zeros(B, H, prefix + n, prefix + n)
    out[:, :, prefix:, prefix:] = a * (1 - prefix_mass)
    if prefix:
        out[:, :, prefix:, :prefix] = prefix_mass / prefix
        out[:, :, :prefix, :] = 1.0 / (prefix + n)
    return out


@pytest.mark.parametrize("g,p", [(3, 4), (4, 16), (5, 8)])
def test_uniform_attention_is_mean_pairwise_distance(g, p):
    n = g * g
    a = with_prefix(torch.full((2, 3, n, n), 1.0 / n), 1, prefix_mass=0.3)
    d = attention_distance(a, p, num_prefix_tokens=1)
    assert d.shape == (3,)
    torch.testing.assert_close(d, torch.full((3,), pairwise_mean_distance(g, p)), rtol=1e-5, atol=1e-5)


def test_identity_attention_is_zero():
    n = 16
    a = with_prefix(torch.eye(n).expand(2, 4, n, n), 1, prefix_mass=0.5)
    assert torch.equal(attention_distance(a, 16, 1), torch.zeros(4))


@pytest.mark.parametrize("g,p", [(4, 16), (7, 8)])
def test_right_neighbour_attention_is_exactly_patch_size(g, p):
    n = g * g
    a = torch.zeros(1, 2, n, n)
    for r in range(g):
        for c in range(g):
            q = r * g + c
            k = q + 1 if c < g - 1 else q - 1  # the last column attends to its left neighbour
            a[0, :, q, k] = 1.0
    a = with_prefix(a, 1, prefix_mass=0.25)
    assert torch.equal(attention_distance(a, p, 1), torch.full((2,), float(p)))


def test_prefix_is_dropped_and_rows_renormalised():
    torch.manual_seed(0)
    n, P = 9, 2
    patch = torch.rand(2, 3, n, n)
    patch = patch / patch.sum(-1, keepdim=True)
    full = with_prefix(patch, P, prefix_mass=0.6)
    # renormalisation recovers the patch-only rows
    torch.testing.assert_close(patch_attention(full, P), patch)
    torch.testing.assert_close(attention_distance(full, 8, P), attention_distance(patch, 8, 0))
    # a loop over queries and keys gives the same distance
    want = torch.zeros(3)
    for b in range(2):
        for h in range(3):
            for q in range(n):
                for k in range(n):
                    want[h] += patch[b, h, q, k] * math.hypot((q // 3 - k // 3) * 8, (q % 3 - k % 3) * 8)
    torch.testing.assert_close(attention_distance(full, 8, P), want / (2 * n))
    with pytest.raises(ValueError, match="square grid"):
        attention_distance(full, 8, 1)  # 10 patch tokens: not a grid


def test_positions_for_a_subset_of_the_grid():
    # two visible tokens at (0, 0) and (2, 1) of a 3 x 3 grid, attending to each other only
    a = with_prefix(torch.tensor([[0.0, 1.0], [1.0, 0.0]]).expand(1, 1, 2, 2), 1)
    pos = torch.tensor([[0, 7]])
    d = attention_distance(a, 4, 1, grid_size=(3, 3), positions=pos)
    torch.testing.assert_close(d, torch.tensor([math.hypot(8, 4)]))


def test_query_mask_and_bad_input():
    n = 4
    a = torch.zeros(1, 1, n, n)
    a[0, 0, 0, 0] = 1  # query 0: distance 0
    a[0, 0, 1:, 0] = 1  # queries 1..3 attend to patch 0
    qm = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    torch.testing.assert_close(attention_distance(a, 2, 0, query_mask=qm), torch.tensor([2.0]))
    assert attention_distance_per_query(a, 2, 0).shape == (1, 1, 4)
    with pytest.raises(ValueError, match=r"\(B, H, N, N\)"):
        attention_distance(a[0], 2, 0)


def test_curves_stream_and_agree_with_one_batch():
    torch.manual_seed(0)
    model = create_model("mae", "test").eval()
    imgs = torch.randn(6, 3, 32, 32)
    enc = attention_distance_curves(model, imgs, "encoder", batch_size=4)
    assert enc.shape == (2, 2)
    torch.testing.assert_close(enc, attention_distance_curves(model, imgs, "encoder", batch_size=6))
    # a loader of (images, labels) works the same
    loader = [(imgs[:3], None), (imgs[3:], None)]
    torch.testing.assert_close(enc, attention_distance_curves(model, loader, "encoder"))
    mask = torch.zeros(16)
    mask[torch.randperm(16)[:12]] = 1
    dec = attention_distance_curves(model, imgs, "decoder", mask=mask, queries="masked")
    assert dec.shape == (1, 2) and bool((dec > 0).all())
    with pytest.raises(ValueError, match="decoder"):
        attention_distance_curves(model, imgs, "encoder", queries="masked")


@pytest.mark.parametrize("family,kw", [("lcmae", {"proj_dim": 8}), ("ae", {"block_size": 24})])
def test_curves_for_every_family(family, kw):
    torch.manual_seed(0)
    model = create_model(family, "test", **kw).eval()
    imgs = torch.randn(3, 3, 32, 32)
    assert attention_distance_curves(model, imgs, "encoder").shape == (2, 2)
    mask = torch.zeros(16) if family == "ae" else None  # the block AE masks nothing
    assert attention_distance_curves(model, imgs, "decoder", mask=mask).shape == (1, 2)


def test_timm_vit_curves_match_the_mae_encoder_in_a_vit():
    from lcmae_core.reference_models import mae_encoder_as_vit
    torch.manual_seed(0)
    model = create_model("mae", "test").eval()
    imgs = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(attention_distance_curves(model, imgs),
                               attention_distance_curves(mae_encoder_as_vit(model), imgs), rtol=1e-4, atol=1e-4)


def test_spearman_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    from lcmae_core.analysis.distance import spearman

    g = torch.Generator().manual_seed(0)
    for x, y in [([0.3, 0.45, 0.6, 0.75, 0.9], [1.0, 2.0, 3.0, 5.0, 4.0]),
                 ([1, 2, 2, 3, 4, 4], [3.0, 1.0, 1.0, 2.0, 7.0, 5.0]),
                 (torch.randn(9, generator=g).tolist(), torch.randn(9, generator=g).tolist())]:
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_distance_trend_by_hand():
    from lcmae_core.analysis.distance import distance_trend

    # 3 knob values, 4 layers, 2 heads; head means per layer: knob k -> [1, 1, 2 + k, 2 + 3k]
    curves = {}
    for k in (0.3, 0.9, 0.6):  # unordered on purpose
        layer = torch.tensor([1.0, 1.0, 2 + k, 2 + 3 * k])
        curves[k] = torch.stack([layer - 0.5, layer + 0.5], dim=-1)  # (layers, heads)
    t = distance_trend(curves)
    assert list(t["mean"]) == [0.3, 0.6, 0.9]
    assert t["mean"][0.6] == pytest.approx((1 + 1 + 2.6 + 3.8) / 4)
    assert t["spearman"] == pytest.approx(1.0) and t["monotone"]
    assert t["spread"] == pytest.approx([0.0, 0.0, 0.6, 1.8])
    assert t["spread_shallow"] == pytest.approx(0.0) and t["spread_deep"] == pytest.approx(1.2)
    assert distance_trend(curves, deep=1)["spread_deep"] == pytest.approx(1.8)
    flat = distance_trend({0.3: torch.ones(2, 2), 0.9: torch.ones(2, 2)})
    assert not flat["monotone"] and math.isnan(flat["spearman"])
    with pytest.raises(ValueError):
        distance_trend({0.3: torch.ones(2, 2)})
    with pytest.raises(ValueError):
        distance_trend(curves, deep=4)


@pytest.mark.parametrize("g,p", [(3, 4), (4, 16)])
def test_uniform_baseline_equals_uniform_attention(g, p):
    from lcmae_core.analysis import uniform_attention_distance

    assert abs(uniform_attention_distance(g, p) - pairwise_mean_distance(g, p)) < 1e-5 * p  # float32 distances
    n = g * g
    positions = [0, n - 1]  # corners are farthest from the rest
    a = with_prefix(torch.full((1, 2, n, n), 1.0 / n), 1, prefix_mass=0.2)
    per_query = attention_distance_per_query(a, p, 1)[0, 0]  # (n,)
    want = float(per_query[positions].mean())
    assert abs(uniform_attention_distance(g, p, torch.tensor(positions)) - want) < 1e-4
    assert uniform_attention_distance(g, p, [0]) > uniform_attention_distance(g, p)


# ------------------------------------------------------------------------------------------------------------
# attention entropy: did attention form at all?


def test_entropy_fraction_is_one_for_uniform_and_zero_for_one_hot_attention():
    from lcmae_core.analysis import attention_entropy

    n = 16
    uniform = with_prefix(torch.full((2, 3, n, n), 1.0 / n), 1, prefix_mass=0.4)  # prefix dropped, rows renormalised
    assert torch.allclose(attention_entropy(uniform), torch.ones(3), atol=1e-6)
    one_hot = with_prefix(torch.eye(n).expand(2, 3, n, n).clone(), 1)
    assert torch.allclose(attention_entropy(one_hot), torch.zeros(3), atol=1e-6)
    # attention spread evenly over 4 of the 16 keys: entropy log 4, a fraction log 4 / log 16 = 1/2
    four = torch.zeros(1, 1, n, n)
    four[..., :4] = 0.25
    assert torch.allclose(attention_entropy(with_prefix(four, 1)), torch.tensor([0.5]), atol=1e-6)
    # a query mask averages only the selected queries
    mixed = with_prefix(torch.cat([torch.full((1, 1, n, n), 1.0 / n), torch.eye(n)[None, None]], 0), 1)
    qmask = torch.tensor([[1] * n, [0] * n])
    assert torch.allclose(attention_entropy(mixed, query_mask=qmask), torch.ones(1), atol=1e-6)


def test_entropy_curves_stream_like_distance_curves():
    from lcmae_core.analysis import attention_entropy_curves

    torch.manual_seed(0)
    model = create_model("mae", "test", img_size=32, patch_size=8).eval()
    imgs = torch.randn(6, 3, 32, 32)
    enc = attention_entropy_curves(model, imgs, part="encoder", batch_size=4)
    assert enc.shape == (len(model.blocks), model.blocks[0].attn.num_heads)
    assert ((enc > 0) & (enc <= 1 + 1e-6)).all()
    assert torch.allclose(enc, attention_entropy_curves(model, imgs, part="encoder", batch_size=6), atol=1e-5)
    mask = torch.zeros(model.num_patches)
    mask[::2] = 1
    dec = attention_entropy_curves(model, imgs, part="decoder", mask=mask, queries="masked")
    assert dec.shape[0] == len(model.decoder_blocks) and ((dec > 0) & (dec <= 1 + 1e-6)).all()
    with pytest.raises(ValueError, match="statistic"):
        attention_distance_curves(model, imgs, statistic="variance")


def test_one_pass_gives_both_distance_and_entropy():
    from lcmae_core.analysis import attention_entropy_curves, attention_stats_curves

    torch.manual_seed(0)
    model = create_model("mae", "test").eval()
    imgs = torch.randn(5, 3, 32, 32)
    both = attention_stats_curves(model, imgs, "encoder", batch_size=2)
    torch.testing.assert_close(both["distance"], attention_distance_curves(model, imgs, "encoder"))
    torch.testing.assert_close(both["entropy"], attention_entropy_curves(model, imgs, "encoder"))
    mask = torch.zeros(16)
    mask[::3] = 1
    dec = attention_stats_curves(model, imgs, "decoder", mask=mask, queries="masked")
    torch.testing.assert_close(dec["distance"], attention_distance_curves(model, imgs, "decoder", mask=mask,
                                                                         queries="masked"))
