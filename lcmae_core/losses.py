"""The three losses of LC-MAE (Sec. 3.3).

The paper writes each loss as a sum; we divide each sum by its number of terms in the batch, as the official
MAE code does for Eq. 1, so that the losses keep their scale whatever the mask ratio and batch size.

Masks are (N, L) with **1 = masked**. Only masked positions enter the losses: they are the positions that
the decoder has to predict.

``nt_xent`` is the global contrastive loss (SimCLR's InfoNCE) of the ``simclr`` family, Fig. 5's contrastive
model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NORM_PIX_EPS = 1e-6


def normalize_patches(target: torch.Tensor, eps: float = NORM_PIX_EPS) -> torch.Tensor:
    """Norm-pix targets: each patch (last dim) minus its mean, over sqrt(unbiased variance + eps), as fb/mae."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** 0.5


def normalize_patches_masked(target: torch.Tensor, valid: torch.Tensor | None,
                             eps: float = NORM_PIX_EPS) -> torch.Tensor:
    """``normalize_patches`` over the valid values of each patch only (the same estimator: the mean, and the
    unbiased variance with n - 1, n the number of valid values, plus eps).

    target: (N, L, P); valid: a bool mask broadcastable to it, e.g. (L, P), True where a value is part of the
    target; None means every value is (then this is ``normalize_patches`` exactly). Invalid positions come out
    0 and take no part in any patch's mean or variance. A patch with a single valid value gets variance 0
    (``normalize_patches`` would give NaN there).
    """
    if valid is None:
        return normalize_patches(target, eps)
    v = valid.to(target.dtype)
    n = v.sum(dim=-1, keepdim=True).clamp_min(1.0)  # each block holds its own patch, so n >= p*p*C
    mean = (target * v).sum(dim=-1, keepdim=True) / n
    centred = (target - mean) * v
    var = (centred**2).sum(dim=-1, keepdim=True) / (n - 1.0).clamp_min(1.0)
    return centred / (var + eps) ** 0.5


def _safe_den(den: torch.Tensor) -> torch.Tensor:
    # an empty selection gives a loss of 0, not NaN
    return den.clamp_min(1.0)


def mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 1, L_MAE, as fb/mae computes it.

    pred, target: (N, L, P); mask: (N, L), 1 = masked.
    Returns the mean over each patch's P values of the squared error, averaged over the masked patches.
    """
    loss = ((pred - target) ** 2).mean(dim=-1)  # (N, L), mean loss per patch
    return (loss * mask).sum() / _safe_den(mask.sum())


def mae_loss_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                    valid: torch.Tensor | None) -> torch.Tensor:
    """``mae_loss`` where only some values of each patch are part of its target.

    valid: a bool mask broadcastable to pred (N, L, P), e.g. (L, P); None means every value (then this is
    ``mae_loss`` exactly). Each patch's loss is the mean squared error over its valid values only, so that a
    patch with fewer valid values is not weighted down; the patch losses are averaged over the masked patches
    as in ``mae_loss``. Invalid positions get no gradient.
    """
    if valid is None:
        return mae_loss(pred, target, mask)
    diff = (pred - target).mul_(valid)  # 0 beyond the valid part; in place: no more memory than mae_loss
    n = valid.sum(dim=-1).clamp_min(1).to(diff.dtype)  # (L,) or (N, L): valid values per patch
    loss = (diff**2).sum(dim=-1) / n  # (N, L), mean loss per patch over its valid values
    return (loss * mask).sum() / _safe_den(mask.sum())


def cross_view_loss(v1: torch.Tensor, v2: torch.Tensor, mask1: torch.Tensor, mask2: torch.Tensor) -> torch.Tensor:
    """Eq. 5, L_cross: align the same position in two masked views.

    v1, v2: (N, L, D) projector outputs of the two views; mask1, mask2: (N, L), 1 = masked.
    Returns sum_i m1_i m2_i (1 - cos(v1_i, v2_i)) / sum_i m1_i m2_i over the whole batch: the positions masked
    in both views, as the paper defines it.
    """
    w = mask1 * mask2  # (N, L)
    cos = F.cosine_similarity(v1, v2, dim=-1)  # (N, L)
    return (w * (1.0 - cos)).sum() / _safe_den(w.sum())


def cosine_matrix(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x: (N, L, D) -> (N, L, L) pairwise cosine similarities, as one batched matmul of unit vectors.

    A zero vector (a flat patch, say) has cosine 0 with everything.
    """
    u = F.normalize(x, dim=-1, eps=eps)
    return u @ u.transpose(1, 2)


def in_view_loss(v: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 6, L_in: the cosine structure of the outputs must match that of the image patches, in one view.

    v: (N, L, D) projector outputs; target: (N, L, P) the patches whose cosine matrix supervises v, or (N/k, L, P)
    shared by k views stacked view after view along the batch (LC-MAE: rows [0, N/2) and [N/2, N) are two views
    of the same images, whose patch cosine matrix is computed once); mask: (N, L), 1 = masked.
    Returns sum_n sum_{i != j} m_i m_j |cos(v_i, v_j) - cos(t_i, t_j)| / sum_n sum_{i != j} m_i m_j.
    Builds (N, L, L) tensors, never (N, L, L, D).
    """
    ct = cosine_matrix(target.to(v.dtype))  # (N/k, L, L)
    if ct.shape[0] != v.shape[0]:
        if ct.shape[0] == 0 or v.shape[0] % ct.shape[0]:
            raise ValueError(f"in_view_loss: {v.shape[0]} outputs do not split into views of {ct.shape[0]} images")
        ct = ct.repeat(v.shape[0] // ct.shape[0], 1, 1)
    diff = (cosine_matrix(v) - ct).abs()  # (N, L, L)
    w = mask.unsqueeze(2) * mask.unsqueeze(1)  # (N, L, L): m_i m_j
    w = w * (1.0 - torch.eye(mask.shape[1], device=mask.device, dtype=w.dtype))  # i != j
    return (w * diff).sum() / _safe_den(w.sum())


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent (InfoNCE) loss of two views, the global contrastive objective of the ``simclr`` family.

    z1, z2: (N, D) projections of two views of the same N images (row n of each is a positive pair).
    The 2N vectors are L2-normalised; each is an anchor whose positive is its partner in the other view and whose
    negatives are the other 2N - 2 vectors. Returns the mean over the 2N anchors of
    -log(exp(cos(a, p) / T) / sum_{k != a} exp(cos(a, k) / T)); computed in float32. N = 1 gives 0.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent takes two (N, D) tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)  # (2N, D)
    logits = (z @ z.T) / temperature  # (2N, 2N)
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pair, float("-inf"))  # an anchor is not its own negative
    idx = torch.arange(n, device=z.device)
    positives = torch.cat([idx + n, idx])  # view-1 anchor n pairs with row N + n, and back
    return F.cross_entropy(logits, positives)
