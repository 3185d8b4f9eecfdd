"""Collapse monitors for LC-MAE's projector outputs (Sec. 3.3, "How MAE avoids feature collapse").

A collapsed model maps every token to the same point. Two numbers show it, computed on the L2-normalised
projector outputs of the masked tokens of a batch:

- ``feature_std``: the standard deviation of each output dimension across tokens, averaged over dimensions.
  For unit vectors spread evenly over a D-dimensional sphere it is about 1/sqrt(D); at collapse it is 0.
- ``effective_rank``: exp of the entropy of the normalised singular values of the (uncentred) unit features
  (Roy and Vetterli, 2007; uncentred as RankMe, Garrido et al. 2023); between 1 and D, and near 1 at collapse,
  where every row is nearly the same unit vector. (Centring would make it scale-free: the residual of a
  collapsed set can have any rank.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def collapse_stats(v: torch.Tensor, mask: torch.Tensor | None = None, max_tokens: int = 4096) -> dict[str, float]:
    """v: (N, L, D) projector outputs; mask: (N, L), 1 = masked (the tokens the losses see), or None for all.

    Returns {"feature_std", "effective_rank", "uniform_std"}; "uniform_std" is 1/sqrt(D), the reference value.
    """
    z = v.reshape(-1, v.shape[-1]) if mask is None else v[mask.bool()]  # (T, D)
    z = F.normalize(z.float(), dim=-1)[:max_tokens]
    std = z.std(dim=0).mean().item() if z.shape[0] > 1 else 0.0
    s = torch.linalg.svdvals(z)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    erank = float(torch.exp(entropy)) if s.sum() > 1e-9 else 1.0
    return {"feature_std": std, "effective_rank": erank, "uniform_std": v.shape[-1] ** -0.5}


def monitor_noise(n: int, num_patches: int, seed: int, device) -> torch.Tensor:
    """The masking noise of ``lcmae_collapse``, (2 views, n, num_patches), drawn on the CPU from ``seed`` and moved to
    ``device``: the same masks wherever a model runs (a CUDA generator draws other numbers from the same seed), so
    that a run trained on a GPU and its random-init twin measured on the CPU see the same batch and masks."""
    return torch.rand(2, n, num_patches, generator=torch.Generator().manual_seed(seed)).to(device)


@torch.no_grad()
def lcmae_collapse(model, imgs: torch.Tensor, mask_ratio: float, seed: int) -> dict[str, float]:
    """The collapse monitors of an LC-MAE on one fixed batch: two views masked with noise drawn from ``seed``;
    ``collapse_stats`` of the projector output v (keys as ``collapse_stats``) and of the decoder hidden state h,
    the projector's input (``hidden_*``), over the masked tokens. The pretraining recipe records them for the
    trained model at the end of training (``final_*``); the Table 1 page measures the initialisation the same way.
    imgs: (N, C, H, W) on the model's device."""
    model.eval()
    res = model.compute_losses(imgs, mask_ratio, monitor_noise(len(imgs), model.num_patches, seed, imgs.device))
    out = collapse_stats(res["v"], res["mask"])
    out.update({f"hidden_{k}": v for k, v in collapse_stats(res["hidden"], res["mask"]).items()})
    return out
