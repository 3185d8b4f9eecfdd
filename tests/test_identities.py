"""Eq. 2 and Eq. 4 of Sec. 3.2 hold on a real (random) model, and the two sides are not trivially equal."""

import pytest
import torch

from lcmae_core.analysis.identities import eq2_sides, eq4_sides, masked_pair, term_sizes
from lcmae_core.masking import masking_from_noise, random_noise, shared_noise
from lcmae_core.models import create_model


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = create_model("mae", "test", norm_pix_loss=True).eval()
    imgs = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return model, imgs


def test_eq2(setup):
    model, imgs = setup
    g = torch.Generator().manual_seed(2)
    na, nb = random_noise(3, 16, generator=g), random_noise(3, 16, generator=g)
    out = eq2_sides(model, imgs, 0.75, na, nb)
    # the positions are exactly those masked in both masks
    both = masking_from_noise(na, 0.75).mask * masking_from_noise(nb, 0.75).mask
    assert torch.equal(out["positions"], both.bool().nonzero())
    K = int(both.sum())
    assert K > 0 and out["lhs"].shape == (K,)
    torch.testing.assert_close(out["lhs"], out["rhs"], rtol=1e-5, atol=1e-5)
    # not trivially equal: both terms matter
    assert (out["contrastive"] > 1e-4).all() and (out["error"] > 1e-4).all()
    assert not torch.allclose(out["lhs"], out["error"], rtol=1e-3)
    assert not torch.allclose(out["lhs"], out["contrastive"] + out["error"], rtol=1e-3)  # a cross term exists
    # lhs computed independently of the library: one forward with mask a
    latent, mask_a, ids = model.forward_encoder(imgs, 0.75, na)
    with torch.no_grad():
        pred_a = model.forward_decoder(latent, ids)
    x = model.targets(imgs)
    b = both.bool()
    torch.testing.assert_close(out["lhs"], ((pred_a - x) ** 2).sum(-1)[b], rtol=1e-5, atol=1e-6)


def test_eq2_same_mask_has_zero_contrast(setup):
    model, imgs = setup
    n = random_noise(3, 16, generator=torch.Generator().manual_seed(3))
    out = eq2_sides(model, imgs, 0.75, n, n.clone())
    assert out["contrastive"].abs().max().item() < 1e-10
    torch.testing.assert_close(out["lhs"], out["error"])


def test_eq4(setup):
    model, imgs = setup
    noise = shared_noise(3, 16, generator=torch.Generator().manual_seed(4))
    i, j = masked_pair(noise, 0.75)
    mask = masking_from_noise(noise, 0.75).mask
    assert i != j and mask[:, i].all() and mask[:, j].all()
    out = eq4_sides(model, imgs, 0.75, noise, i, j)
    assert out["lhs"].shape == (3,)
    torch.testing.assert_close(out["lhs"], out["rhs"], rtol=1e-5, atol=1e-5)
    assert (out["contrastive"] > 1e-4).all() and (out["error"] > 1e-4).all()
    assert not torch.allclose(out["lhs"], out["error"], rtol=1e-3)
    # swapping i and j: the lhs becomes the error at j of the first call
    swapped = eq4_sides(model, imgs, 0.75, noise, j, i)
    torch.testing.assert_close(swapped["lhs"], out["error"])
    torch.testing.assert_close(swapped["lhs"], swapped["rhs"], rtol=1e-5, atol=1e-5)


def test_eq4_every_masked_pair(setup):
    model, imgs = setup
    noise = shared_noise(3, 16, generator=torch.Generator().manual_seed(5))
    masked = masking_from_noise(noise, 0.75).mask[0].nonzero().flatten().tolist()
    for i in masked[:4]:
        for j in masked[:4]:
            if i != j:
                out = eq4_sides(model, imgs, 0.75, noise, i, j)
                torch.testing.assert_close(out["lhs"], out["rhs"], rtol=1e-5, atol=1e-5)


def test_eq4_rejects_visible_positions(setup):
    model, imgs = setup
    noise = shared_noise(3, 16, generator=torch.Generator().manual_seed(6))
    m = masking_from_noise(noise, 0.75).mask[0]
    visible = int((m == 0).nonzero()[0])
    masked = int(m.nonzero()[0])
    with pytest.raises(ValueError, match="must be masked"):
        eq4_sides(model, imgs, 0.75, noise, visible, masked)
    with pytest.raises(ValueError, match="must be masked"):
        eq4_sides(model, imgs, 0.75, noise, masked, visible)
    # a per-image mask where the pair is masked in some images only is refused too
    rnd = random_noise(3, 16, generator=torch.Generator().manual_seed(7))
    rm = masking_from_noise(rnd, 0.75).mask
    partial = [k for k in range(16) if 0 < rm[:, k].sum() < 3]
    full = [k for k in range(16) if rm[:, k].all()]
    assert partial and full  # this seed has both kinds of positions
    with pytest.raises(ValueError, match="must be masked"):
        eq4_sides(model, imgs, 0.75, rnd, partial[0], full[0])


def test_masked_pair_needs_a_shared_mask():
    noise = torch.tensor([[0.0, 0.9, 0.8, 0.7], [0.9, 0.0, 0.8, 0.7], [0.9, 0.8, 0.0, 0.7]])
    # ratio 0.5 keeps 2 per row: masked rows are {1,2}, {0,2}, {0,1} -> nothing masked in every row
    with pytest.raises(ValueError, match="shared mask"):
        masked_pair(noise, 0.5)


def test_term_sizes_are_the_means_of_the_sides(setup):
    model, imgs = setup
    out = term_sizes(model, imgs, 0.75, seed=8)
    g = torch.Generator().manual_seed(8)
    na, nb = random_noise(3, 16, generator=g), random_noise(3, 16, generator=g)
    shared = shared_noise(3, 16, generator=g)
    e2 = eq2_sides(model, imgs, 0.75, na, nb)
    for k in ("lhs", "contrastive", "error"):
        assert out[f"eq2_{k}"] == pytest.approx(float(e2[k].mean()), rel=1e-6)
    masked = masking_from_noise(shared, 0.75).mask[0].nonzero().flatten().tolist()
    pairs = [eq4_sides(model, imgs, 0.75, shared, i, j) for i in masked for j in masked if i != j]
    for k in ("lhs", "contrastive", "error"):
        assert out[f"eq4_{k}"] == pytest.approx(float(torch.stack([p[k] for p in pairs]).mean()), rel=1e-5)
    assert out["eq2_max_rel_diff"] < 1e-5 and out["eq4_max_rel_diff"] < 1e-5
    # the pair distance: mean ||h_i - h_j||^2 over the same pairs
    latent, _, ids = model.forward_encoder(imgs, 0.75, shared)
    with torch.no_grad():
        pred = model.forward_decoder(latent, ids)
    want = torch.stack([((pred[:, i] - pred[:, j]) ** 2).sum(-1) for i in masked for j in masked if i != j]).mean()
    assert out["pair_distance"] == pytest.approx(float(want), rel=1e-5)
    # the target pair distance: ||x_i - x_j||^2, the Eq. 4 contrastive term of a constant prediction (h_i = h_j)
    x = model.patchify(imgs)
    x = (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True) + 1e-6) ** 0.5  # norm-pix targets
    want = torch.stack([((x[:, i] - x[:, j]) ** 2).sum(-1) for i in masked for j in masked if i != j]).mean()
    assert out["target_pair_distance"] == pytest.approx(float(want), rel=1e-5)
    assert term_sizes(model, imgs, 0.75, seed=8) == out  # deterministic
