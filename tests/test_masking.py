"""Masks: counts, the 1 = masked convention, determinism from noise, shared and two-view noise, round trips."""

import pytest
import torch

from lcmae_core.masking import (check_mask_ratio, mask_ratio_of, masking_from_noise, noise_for_mask,
                                num_visible, random_noise, shared_noise, two_view_noise)
from lcmae_core.models import create_model


@pytest.mark.parametrize("L", [16, 49, 196])
@pytest.mark.parametrize("r", [0.0, 0.1, 0.5, 0.6, 0.75, 0.9])
def test_mask_counts(L, r):
    g = torch.Generator().manual_seed(0)
    noise = random_noise(5, L, generator=g)
    m = masking_from_noise(noise, r)
    len_keep = int(L * (1 - r))
    assert num_visible(L, r) == len_keep
    assert m.mask.shape == (5, L)
    assert m.ids_keep.shape == (5, len_keep)
    assert m.ids_restore.shape == (5, L)
    # exactly L - len_keep masked per row, mask is binary
    assert torch.equal(m.mask.sum(1), torch.full((5,), float(L - len_keep)))
    assert set(m.mask.unique().tolist()) <= {0.0, 1.0}


def test_one_means_masked_and_ids_keep_are_smallest_noise():
    g = torch.Generator().manual_seed(1)
    noise = random_noise(4, 20, generator=g)
    r = 0.75
    m = masking_from_noise(noise, r)
    len_keep = int(20 * (1 - r))
    for n in range(4):
        smallest = set(torch.topk(noise[n], len_keep, largest=False).indices.tolist())
        assert set(m.ids_keep[n].tolist()) == smallest
        # kept positions are 0 in the mask (visible), all others 1 (masked)
        for l in range(20):
            assert m.mask[n, l].item() == (0.0 if l in smallest else 1.0)
        # the encoder order is ascending noise
        assert torch.all(noise[n, m.ids_keep[n]][1:] >= noise[n, m.ids_keep[n]][:-1])
        # ids_restore is the inverse permutation of the shuffle
        shuffle = torch.argsort(noise[n])
        assert torch.equal(shuffle[m.ids_restore[n]], torch.arange(20))


def test_hand_built_noise():
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
    m = masking_from_noise(noise, 0.5)  # keep 2: positions 1 (0.1) and 3 (0.3)
    assert m.mask.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    assert m.ids_keep.tolist() == [[1, 3]]


def test_same_noise_same_mask_different_noise_different_mask():
    noise = random_noise(3, 64, generator=torch.Generator().manual_seed(2))
    a, b = masking_from_noise(noise, 0.75), masking_from_noise(noise.clone(), 0.75)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    other = random_noise(3, 64, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(masking_from_noise(other, 0.75).mask, a.mask)


def test_shared_noise_gives_identical_rows():
    noise = shared_noise(6, 49, generator=torch.Generator().manual_seed(4))
    assert noise.shape == (6, 49)
    m = masking_from_noise(noise, 0.75)
    assert torch.equal(m.mask, m.mask[:1].expand(6, -1))
    assert torch.equal(m.ids_keep, m.ids_keep[:1].expand(6, -1))
    # and a plain random noise does not
    m2 = masking_from_noise(random_noise(6, 49, generator=torch.Generator().manual_seed(4)), 0.75)
    assert not torch.equal(m2.mask, m2.mask[:1].expand(6, -1))


def test_two_view_noise_shape_and_independent_views():
    noise = two_view_noise(8, 64, generator=torch.Generator().manual_seed(5))
    assert noise.shape == (2, 8, 64)
    m1 = masking_from_noise(noise[0], 0.75).mask
    m2 = masking_from_noise(noise[1], 0.75).mask
    assert not torch.equal(m1, m2)
    assert (m1 != m2).any(1).all()  # every image gets two different masks
    # independence: the fraction masked in both is about r^2 (= 0.5625), not r (= 0.75)
    big = two_view_noise(64, 256, generator=torch.Generator().manual_seed(6))
    both = (masking_from_noise(big[0], 0.75).mask * masking_from_noise(big[1], 0.75).mask).mean().item()
    assert abs(both - 0.5625) < 0.02


@pytest.mark.parametrize("keep", [0, 1, 4, 7, 12, 16])
def test_noise_for_mask_round_trip(keep):
    L, N = 16, 5
    g = torch.Generator().manual_seed(keep)
    mask = torch.ones(N, L)
    for n in range(N):
        mask[n, torch.randperm(L, generator=g)[:keep]] = 0.0
    r = mask_ratio_of(mask)
    assert 0.0 <= r < 1.0
    assert num_visible(L, r) == keep
    m = masking_from_noise(noise_for_mask(mask), r)
    assert torch.equal(m.mask, mask)
    assert torch.equal((m.mask == 0).sum(1), torch.full((N,), keep))


def test_noise_for_mask_rejects_ragged():
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="same number of visible"):
        noise_for_mask(mask)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_check_mask_ratio_rejects(bad):
    with pytest.raises(ValueError, match=r"mask_ratio must be in \[0, 1\)"):
        check_mask_ratio(bad)
    with pytest.raises(ValueError, match="mask_ratio"):
        masking_from_noise(torch.rand(2, 16), bad)


def test_check_mask_ratio_accepts():
    assert check_mask_ratio(0) == 0.0
    assert check_mask_ratio(0.75) == 0.75


def test_model_forward_honours_noise():
    torch.manual_seed(0)
    model = create_model("mae", "test").eval()
    imgs = torch.randn(3, 3, 32, 32)
    noise = random_noise(3, model.num_patches, generator=torch.Generator().manual_seed(7))
    expected = masking_from_noise(noise, 0.75).mask
    loss1, pred1, mask1 = model(imgs, 0.75, noise)
    loss2, pred2, mask2 = model(imgs, 0.75, noise)
    assert torch.equal(mask1, expected)
    assert torch.equal(mask1, mask2)
    assert torch.allclose(pred1, pred2) and torch.allclose(loss1, loss2)
    # an arbitrary given mask (5 visible per row, a different set per image) reproduced through noise_for_mask
    g = torch.Generator().manual_seed(8)
    target_mask = torch.ones(3, 16)
    for n in range(3):
        target_mask[n, torch.randperm(16, generator=g)[:5]] = 0.0
    _, _, mask3 = model(imgs, mask_ratio_of(target_mask), noise_for_mask(target_mask))
    assert torch.equal(mask3, target_mask)
    # the encoder sees the kept tokens: latent length 1 + len_keep
    latent, mask4, _ = model.forward_encoder(imgs, 0.75, noise)
    assert latent.shape[1] == 1 + int(16 * 0.25) and torch.equal(mask4, expected)
    with pytest.raises(ValueError, match="noise must have shape"):
        model(imgs, 0.75, torch.rand(2, 16))
