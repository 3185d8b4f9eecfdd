"""The two algebraic identities of Sec. 3.2, computed on a real model.

Write h(x, m) for the model's prediction and x_j for the target of patch j (the normalised patch when
norm-pix is on), and e_pred(j | m) = h(x, m)_j - x_j (Eq. 3).

Eq. 2, for a position j masked in two masks m_a and m_b:
    ||h(x, m_a)_j - x_j||^2 = ||(h(x, m_a)_j - h(x, m_b)_j) + e_pred(j | m_b)||^2

Eq. 4, for two masked positions i and j of one mask m:
    ||h(x, m)_i - x_i||^2 = ||[(h(x, m)_i - h(x, m)_j) - (x_i - x_j)] + e_pred(j | m)||^2

Both hold exactly in real arithmetic; computed in floating point the two sides agree to rounding. The
functions return both sides and the sizes of the contrastive and prediction-error terms, so that a notebook can
show the identities and track the local contrastive term over training.
"""

from __future__ import annotations

import torch

from .masking import masking_from_noise


@torch.no_grad()
def _predict(model, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor):
    """-> pred (N, L, P), mask (N, L), target (N, L, P) for a plain MAE forward with the given noise."""
    latent, mask, ids_restore = model.forward_encoder(imgs, mask_ratio, noise)
    pred = model.forward_decoder(latent, ids_restore)
    return pred, mask, model.targets(imgs)


@torch.no_grad()
def eq2_sides(model, imgs: torch.Tensor, mask_ratio: float, noise_a: torch.Tensor,
              noise_b: torch.Tensor) -> dict[str, torch.Tensor]:
    """Both sides of Eq. 2 at every position masked in both views.

    Returns 1-D tensors over those (image, position) pairs: "lhs", "rhs", "contrastive" (the squared norm of
    h_a - h_b), "error" (the squared norm of e_pred(j | m_b)), and "positions" (K, 2) = (image, j).
    """
    pred_a, mask_a, target = _predict(model, imgs, mask_ratio, noise_a)
    pred_b, mask_b, _ = _predict(model, imgs, mask_ratio, noise_b)
    both = (mask_a * mask_b).bool()  # (N, L)
    ha, hb, x = pred_a[both], pred_b[both], target[both]  # (K, P)
    contrast = ha - hb
    err_b = hb - x
    return {
        "lhs": ((ha - x) ** 2).sum(-1),
        "rhs": ((contrast + err_b) ** 2).sum(-1),
        "contrastive": (contrast**2).sum(-1),
        "error": (err_b**2).sum(-1),
        "positions": both.nonzero(),
    }


@torch.no_grad()
def eq4_sides(model, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor, i: int,
              j: int) -> dict[str, torch.Tensor]:
    """Both sides of Eq. 4 for the pair (i, j) of positions, in every image; both must be masked.

    Returns (N,) tensors "lhs", "rhs", "contrastive" (the squared norm of (h_i - h_j) - (x_i - x_j)) and
    "error" (the squared norm of e_pred(j | m)).
    """
    pred, mask, x = _predict(model, imgs, mask_ratio, noise)
    if not bool(mask[:, i].all() and mask[:, j].all()):
        raise ValueError(f"positions {i} and {j} must be masked in every image; pick them from the mask "
                         "(see masked_pair) or use a shared mask")
    contrast = (pred[:, i] - pred[:, j]) - (x[:, i] - x[:, j])
    err_j = pred[:, j] - x[:, j]
    return {
        "lhs": ((pred[:, i] - x[:, i]) ** 2).sum(-1),
        "rhs": ((contrast + err_j) ** 2).sum(-1),
        "contrastive": (contrast**2).sum(-1),
        "error": (err_j**2).sum(-1),
    }


def masked_pair(noise: torch.Tensor, mask_ratio: float) -> tuple[int, int]:
    """Two positions masked in every row of a noise tensor (N, L), e.g. of a shared mask."""
    masked = masking_from_noise(noise, mask_ratio).mask.bool().all(0).nonzero().flatten().tolist()
    if len(masked) < 2:
        raise ValueError("fewer than two positions are masked in every image; use a shared mask")
    return masked[0], masked[1]
