"""Reconstruction quality on held-out images (Table 2: is a local decoder enough to reconstruct?).

``reconstruction_loss`` evaluates Eq. 1, the per-patch mean squared error over the masked patches (against
norm-pix targets when the model was trained with them), on images the model was not trained on. Masks are drawn
per image from ``torch.Generator().manual_seed(seed)``, so every model with the same patch grid is scored on the
identical masks and two calls give the same number.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ._batches import iter_image_batches
from ..masking import MASK_RATIO, noise_for_mask, random_masks


@torch.no_grad()
def reconstruction_loss(model: nn.Module, images, mask_ratio: float = MASK_RATIO, seed: int = 0, batch_size: int = 64,
                        device=None, limit: int | None = None, zero_prediction: bool = False) -> float:
    """Eq. 1 averaged over images: mean over images of the MSE on the masked patches of each.

    zero_prediction: score the prediction 0 for every patch instead of the decoder's (the null control of
    Table 2: with norm-pix targets it predicts each patch's own mean, and scores about 1 on textured patches).

    model: an MAE-family model (``forward_encoder``, ``forward_decoder``, ``forward_loss``); any decoder.
    images: a tensor (N, C, H, W) or an iterable of batches. Every image has the same number of masked patches, so
    the mean over a batch's masked patches equals the mean over its images; batches are weighted by their size.
    """
    model.eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for imgs in iter_image_batches(images, batch_size, dev, limit):
        B = imgs.shape[0]
        mask = random_masks(B, model.num_patches, mask_ratio, gen).to(dev)  # (B, L)
        latent, mask_out, ids_restore = model.forward_encoder(imgs, mask_ratio, noise_for_mask(mask))
        pred = model.forward_decoder(latent, ids_restore)  # (B, L, P)
        if zero_prediction:
            pred = torch.zeros_like(pred)
        total += float(model.forward_loss(imgs, pred, mask_out)) * B
        count += B
    if count == 0:
        raise ValueError("no images: the image source was empty")
    return total / count


__all__ = ["reconstruction_loss"]
