"""Eq. 1, Eq. 5 and Eq. 6 against hand-computed cases and explicit loops (independent of the vectorised code)."""

import math

import pytest
import torch

from lcmae_core.losses import cosine_matrix, cross_view_loss, in_view_loss, mae_loss, normalize_patches


def _cos(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


def _random_mask(N, L, g, p=0.6):
    return (torch.rand(N, L, generator=g) < p).float()


# ---------------------------------------------------------------------------------------------------------
# Eq. 5
def test_cross_identical_views_is_zero():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(3, 10, 7, generator=g, dtype=torch.float64)
    m1, m2 = _random_mask(3, 10, g).double(), _random_mask(3, 10, g).double()
    assert cross_view_loss(v, v.clone(), m1, m2).item() == pytest.approx(0.0, abs=1e-12)
    # scale invariance: cosine ignores the norms
    assert cross_view_loss(v, 3.0 * v, m1, m2).item() == pytest.approx(0.0, abs=1e-12)


def test_cross_orthogonal_is_one_and_opposite_is_two():
    e = torch.eye(4, dtype=torch.float64)
    v1 = e[[0, 1]].unsqueeze(0)  # (1, 2, 4)
    v2 = e[[2, 3]].unsqueeze(0)
    m = torch.ones(1, 2, dtype=torch.float64)
    assert cross_view_loss(v1, v2, m, m).item() == pytest.approx(1.0)
    assert cross_view_loss(v1, -v1, m, m).item() == pytest.approx(2.0)


def test_cross_loop():
    g = torch.Generator().manual_seed(1)
    N, L, D = 3, 9, 5
    v1 = torch.randn(N, L, D, generator=g, dtype=torch.float64)
    v2 = torch.randn(N, L, D, generator=g, dtype=torch.float64)
    m1, m2 = _random_mask(N, L, g).double(), _random_mask(N, L, g).double()
    total, count = 0.0, 0
    for n in range(N):
        for i in range(L):
            if m1[n, i] == 1 and m2[n, i] == 1:
                total += 1 - _cos(v1[n, i], v2[n, i])
                count += 1
    assert count > 0
    assert cross_view_loss(v1, v2, m1, m2).item() == pytest.approx(total / count, rel=1e-10)


def test_cross_normalised_by_m1_m2_and_ignores_other_positions():
    e = torch.eye(3, dtype=torch.float64)
    # position 0: both masked, orthogonal (1 - cos = 1); position 1: both masked, identical (0);
    # position 2: masked in view 1 only, opposite (would add 2); position 3: visible in both, opposite
    v1 = torch.stack([e[0], e[1], e[2], e[0]]).unsqueeze(0)
    v2 = torch.stack([e[1], e[1], -e[2], -e[0]]).unsqueeze(0)
    m1 = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    m2 = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    assert cross_view_loss(v1, v2, m1, m2).item() == pytest.approx(0.5)  # (1 + 0) / 2, not / 3 or / 4


def test_cross_empty_selection_is_zero_not_nan():
    v = torch.randn(2, 4, 3)
    m1 = torch.tensor([[1.0, 0, 1, 0], [1, 0, 1, 0]])
    out = cross_view_loss(v, torch.randn(2, 4, 3), m1, 1 - m1)
    assert out.item() == 0.0


# ---------------------------------------------------------------------------------------------------------
# Eq. 6
def test_in_view_identical_structure_is_zero():
    g = torch.Generator().manual_seed(2)
    t = torch.randn(2, 8, 12, generator=g, dtype=torch.float64)
    mask = _random_mask(2, 8, g).double()
    assert in_view_loss(t, t.clone(), mask).item() == pytest.approx(0.0, abs=1e-12)
    # any orthogonal map of the features keeps all cosines
    Q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    assert in_view_loss(t @ Q, t, mask).item() == pytest.approx(0.0, abs=1e-10)


def test_in_view_orthogonal_vs_parallel_is_one():
    # outputs pairwise orthogonal (cos 0), targets all parallel (cos 1): every term is |0 - 1| = 1
    v = torch.eye(4, dtype=torch.float64).unsqueeze(0)
    t = torch.ones(1, 4, 6, dtype=torch.float64)
    mask = torch.ones(1, 4, dtype=torch.float64)
    assert in_view_loss(v, t, mask).item() == pytest.approx(1.0)


def test_in_view_diagonal_excluded():
    # one masked position only: there is no i != j pair, so the loss is 0 even though the diagonal of the
    # output cosine (1) and a zero target's "cosine" (0) differ
    v = torch.randn(1, 3, 4, dtype=torch.float64)
    t = torch.zeros(1, 3, 5, dtype=torch.float64)
    mask = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    assert in_view_loss(v, t, mask).item() == 0.0
    # two masked positions with equal cosines off the diagonal; the diagonal would contribute |1 - 0| if counted
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]], dtype=torch.float64)
    t = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]], dtype=torch.float64)
    t[0, 0] = 0.0  # target 0 is a zero vector: cos(t0, t0) = 0 vs cos(v0, v0) = 1 on the diagonal
    mask = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    # off-diagonal: cos(v0, v1) = 0, cos(t0, t1) = 0 (zero vector) -> 0
    assert in_view_loss(v, t, mask).item() == pytest.approx(0.0, abs=1e-12)


def test_in_view_loop_and_normalisation():
    g = torch.Generator().manual_seed(3)
    N, L, D, P = 3, 7, 5, 6
    v = torch.randn(N, L, D, generator=g, dtype=torch.float64)
    t = torch.randn(N, L, P, generator=g, dtype=torch.float64)
    mask = _random_mask(N, L, g).double()
    total, count = 0.0, 0
    for n in range(N):
        for i in range(L):
            for j in range(L):
                if i != j and mask[n, i] == 1 and mask[n, j] == 1:
                    total += abs(_cos(v[n, i], v[n, j]) - _cos(t[n, i], t[n, j]))
                    count += 1
    # count = sum_n k_n (k_n - 1), the ordered i != j pairs of masked positions, summed over the batch
    k = mask.sum(1)
    assert count == int((k * (k - 1)).sum())
    assert in_view_loss(v, t, mask).item() == pytest.approx(total / count, rel=1e-10)


def test_in_view_float32_matches_loop():
    g = torch.Generator().manual_seed(4)
    v = torch.randn(2, 6, 4, generator=g)
    t = torch.randn(2, 6, 4, generator=g)
    mask = torch.ones(2, 6)
    ref = in_view_loss(v.double(), t.double(), mask.double()).item()
    assert in_view_loss(v, t, mask).item() == pytest.approx(ref, rel=1e-5)


def test_cosine_matrix():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    x[0, 2] = 0.0
    c = cosine_matrix(x)
    for n in range(2):
        for i in range(4):
            for j in range(4):
                ref = 0.0 if (n == 0 and 2 in (i, j)) else _cos(x[n, i], x[n, j])
                assert c[n, i, j].item() == pytest.approx(ref, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Eq. 1 and norm-pix
def test_mae_loss_loop():
    g = torch.Generator().manual_seed(6)
    N, L, P = 2, 6, 5
    pred = torch.randn(N, L, P, generator=g, dtype=torch.float64)
    target = torch.randn(N, L, P, generator=g, dtype=torch.float64)
    mask = _random_mask(N, L, g).double()
    total, count = 0.0, 0
    for n in range(N):
        for l in range(L):
            if mask[n, l] == 1:
                total += sum(float(pred[n, l, p] - target[n, l, p]) ** 2 for p in range(P)) / P
                count += 1
    assert mae_loss(pred, target, mask).item() == pytest.approx(total / count, rel=1e-12)
    # visible positions do not count: changing them leaves the loss unchanged
    pred2 = pred.clone()
    pred2[mask == 0] += 100.0
    assert mae_loss(pred2, target, mask).item() == pytest.approx(total / count, rel=1e-12)


def test_mae_loss_hand_case():
    pred = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [3.0, 0.0]]])
    target = torch.zeros(1, 3, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    # per-patch means: 1, (0), 4.5 -> average over the 2 masked patches = 2.75
    assert mae_loss(pred, target, mask).item() == pytest.approx(2.75)


def test_normalize_patches_unbiased_var_eps():
    x = torch.tensor([[[1.0, 2.0, 3.0, 6.0]]], dtype=torch.float64)
    mean = 3.0
    var = sum((a - mean) ** 2 for a in [1.0, 2.0, 3.0, 6.0]) / 3  # unbiased: / (n - 1)
    expected = [(a - mean) / math.sqrt(var + 1e-6) for a in [1.0, 2.0, 3.0, 6.0]]
    assert normalize_patches(x)[0, 0].tolist() == pytest.approx(expected, rel=1e-12)
    # a flat patch maps to 0, not NaN (the eps)
    flat = torch.full((1, 1, 4), 5.0)
    assert torch.equal(normalize_patches(flat), torch.zeros(1, 1, 4))
    # tiny variance: eps matters; with a biased variance or no eps the value would differ
    small = torch.tensor([[[0.0, 1e-3]]], dtype=torch.float64)
    v = (1e-3) ** 2 / 2  # unbiased var of two values 0 and 1e-3 is (5e-4^2 * 2) / 1
    assert normalize_patches(small)[0, 0, 1].item() == pytest.approx(5e-4 / math.sqrt(v + 1e-6), rel=1e-10)


def test_model_norm_pix_targets():
    from lcmae_core.models import create_model

    torch.manual_seed(0)
    model = create_model("mae", "test", norm_pix_loss=True)
    imgs = torch.randn(2, 3, 32, 32)
    patches = model.patchify(imgs)
    t = model.targets(imgs)
    assert torch.allclose(t, (patches - patches.mean(-1, keepdim=True))
                          / (patches.var(-1, keepdim=True, unbiased=True) + 1e-6).sqrt(), atol=1e-6)
    assert torch.allclose(t.mean(-1), torch.zeros(2, 16), atol=1e-5)
    # the forward loss uses these targets
    noise = torch.rand(2, 16)
    loss, pred, mask = model(imgs, 0.75, noise)
    assert loss.item() == pytest.approx(mae_loss(pred, t, mask).item(), rel=1e-6)
    model.norm_pix_loss = False
    loss_raw = model(imgs, 0.75, noise)[0]
    assert loss_raw.item() == pytest.approx(mae_loss(pred, patches, mask).item(), rel=1e-6)


def test_in_view_loss_shares_one_target_matrix_across_stacked_views():
    g = torch.Generator().manual_seed(11)
    v = torch.randn(6, 9, 5, generator=g)  # three views of two images, view after view
    t = torch.randn(2, 9, 7, generator=g)
    mask = (torch.rand(6, 9, generator=g) > 0.4).float()
    stacked = in_view_loss(v, torch.cat([t, t, t]), mask)
    assert in_view_loss(v, t, mask).item() == pytest.approx(stacked.item(), rel=1e-6)
    with pytest.raises(ValueError, match="do not split into views"):
        in_view_loss(v, torch.randn(4, 9, 7), mask)
