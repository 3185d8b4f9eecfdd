"""The two algebraic identities of Sec. 3.2, computed on a real model.

Write h(x, m) for the model's prediction and x_j for the target of patch j (the normalised patch when
norm-pix is on), and e_pred(j | m) = h(x, m)_j - x_j (Eq. 3).

Eq. 2, for a position j masked in two masks m_a and m_b:
    ||h(x, m_a)_j - x_j||^2 = ||(h(x, m_a)_j - h(x, m_b)_j) + e_pred(j | m_b)||^2

Eq. 4, for two masked positions i and j of one mask m:
    ||h(x, m)_i - x_i||^2 = ||[(h(x, m)_i - h(x, m)_j) - (x_i - x_j)] + e_pred(j | m)||^2

Both hold exactly in real arithmetic; computed in floating point the two sides agree to rounding. The
functions return both sides and the sizes of the contrastive and prediction-error terms, so that a notebook can
show the identities and track the local contrastive term over training (``term_sizes``: the batch means, for
one model, e.g. each weight snapshot of a run).
"""

from __future__ import annotations

import torch

from ..masking import MASK_RATIO, masking_from_noise, random_noise, shared_noise


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


@torch.no_grad()
def term_sizes(model, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO, seed: int = 0) -> dict[str, float]:
    """Batch means of the terms of Eq. 2 and Eq. 4 for one model, with masks drawn from ``seed``.

    Eq. 2: two independent masks per image; means over every (image, position) masked in both.
    Eq. 4: one mask shared by the images; means over every ordered pair (i, j), i != j, of its masked positions.
    Returns {"eq2_lhs", "eq2_contrastive", "eq2_error", "eq2_max_rel_diff", "eq4_lhs", "eq4_contrastive",
    "eq4_error", "eq4_max_rel_diff", "pair_distance", "target_pair_distance"}; "*_max_rel_diff" is
    max |lhs - rhs| / lhs; "pair_distance" the mean squared distance ||h_i - h_j||^2 between the predictions at two
    masked positions of one view (the scale against which the Eq. 2 contrastive term, same position in two views,
    is small); "target_pair_distance" the same between the targets, ||x_i - x_j||^2: the Eq. 4 contrastive term of
    a constant prediction (h_i = h_j).
    """
    g = torch.Generator().manual_seed(seed)
    n, L = imgs.shape[0], model.num_patches
    noise_a, noise_b = random_noise(n, L, generator=g), random_noise(n, L, generator=g)
    e2 = eq2_sides(model, imgs, mask_ratio, noise_a, noise_b)
    pred, mask, x = _predict(model, imgs, mask_ratio, shared_noise(n, L, generator=g))
    idx = mask[0].bool().nonzero().flatten()  # (K,) the masked positions, the same in every image
    h, t = pred[:, idx], x[:, idx]  # (N, K, P)
    contrast = (h[:, :, None] - h[:, None]) - (t[:, :, None] - t[:, None])  # (N, K, K, P): [n, i, j]
    err = h - t  # (N, K, P): e_pred at each masked position
    lhs4 = (err**2).sum(-1)[:, :, None].expand(-1, -1, len(idx))  # (N, K, K): ||e_i||^2 for every j
    rhs4 = ((contrast + err[:, None]) ** 2).sum(-1)
    off = ~torch.eye(len(idx), dtype=torch.bool)  # i != j
    rel = lambda lhs, rhs: float(((lhs - rhs).abs() / lhs.clamp_min(1e-12)).max())
    return {
        "eq2_lhs": float(e2["lhs"].mean()), "eq2_contrastive": float(e2["contrastive"].mean()),
        "eq2_error": float(e2["error"].mean()), "eq2_max_rel_diff": rel(e2["lhs"], e2["rhs"]),
        "eq4_lhs": float(lhs4[:, off].mean()), "eq4_contrastive": float((contrast**2).sum(-1)[:, off].mean()),
        "eq4_error": float((err**2).sum(-1)[:, None].expand(-1, len(idx), -1)[:, off].mean()),
        "eq4_max_rel_diff": rel(lhs4[:, off], rhs4[:, off]),
        "pair_distance": float(((h[:, :, None] - h[:, None]) ** 2).sum(-1)[:, off].mean()),
        "target_pair_distance": float(((t[:, :, None] - t[:, None]) ** 2).sum(-1)[:, off].mean()),
    }
