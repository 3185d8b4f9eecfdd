"""Eq. 1 on held-out images (Table 2): equals the model's own loss on the same masks, for every decoder."""

import pytest
import torch

from lcmae_core.analysis import reconstruction_loss
from lcmae_core.masking import masking_from_noise, noise_for_mask
from lcmae_core.models import create_model


@pytest.mark.parametrize("decoder", ["transformer", "gaussian", "conv"])
def test_matches_the_model_loss_and_ignores_batching(decoder):
    torch.manual_seed(0)
    model = create_model("mae", "test", decoder=decoder).eval()
    imgs = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got = reconstruction_loss(model, imgs, mask_ratio=0.75, seed=5, batch_size=6)
    mask = masking_from_noise(torch.rand(6, 16, generator=torch.Generator().manual_seed(5)), 0.75).mask
    with torch.no_grad():
        want, _, _ = model(imgs, 0.75, noise_for_mask(mask))
    assert abs(got - want.item()) < 1e-5
    assert got == reconstruction_loss(model, imgs, mask_ratio=0.75, seed=5, batch_size=6)  # deterministic
    # per-image masks come from one stream: smaller batches see the same masks
    assert abs(reconstruction_loss(model, imgs, mask_ratio=0.75, seed=5, batch_size=4) - got) < 1e-5


def test_empty_source():
    model = create_model("mae", "test").eval()
    with pytest.raises(ValueError, match="no images"):
        reconstruction_loss(model, torch.zeros(0, 3, 32, 32))
