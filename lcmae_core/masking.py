"""Random masks, as facebookresearch/mae draws them, plus the shared and two-view variants the paper needs.

Convention throughout: a mask is (N, L) with **1 = masked (removed)** and **0 = visible (kept)**.

A mask comes from a noise tensor (N, L): the ``len_keep = int(L * (1 - mask_ratio))`` positions with the
smallest noise stay visible, exactly as the official ``random_masking`` picks them with ``argsort``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

MASK_RATIO = 0.75  # the paper's and fb/mae's mask ratio: the one default of every signature that takes a ratio


class Masking(NamedTuple):
    """The indices a masked forward pass needs.

    ids_keep:    (N, len_keep) positions of the visible tokens, in the order they enter the encoder.
    ids_restore: (N, L) the inverse permutation: position l of the full sequence sits at ids_restore[n, l]
                 in [visible tokens..., mask tokens...].
    mask:        (N, L) float, 1 = masked, 0 = visible.
    """

    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor


def check_mask_ratio(mask_ratio: float) -> float:
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}; pick e.g. 0.75")
    return float(mask_ratio)


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """The official count of visible tokens, ``int(L * (1 - mask_ratio))``."""
    return int(num_patches * (1 - check_mask_ratio(mask_ratio)))


def masking_from_noise(noise: torch.Tensor, mask_ratio: float) -> Masking:
    """noise: (N, L) -> Masking. The len_keep smallest-noise positions are visible."""
    if noise.dim() != 2:
        raise ValueError(f"noise must be (N, L), got shape {tuple(noise.shape)}")
    N, L = noise.shape
    len_keep = num_visible(L, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is keep, large is remove
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    # a position is masked iff its rank in the shuffle is >= len_keep; cheaper than the official scatter
    mask = (ids_restore >= len_keep).to(noise.dtype if noise.is_floating_point() else torch.float32)
    return Masking(ids_keep, ids_restore, mask)


def random_noise(batch: int, num_patches: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample masking noise, (N, L), uniform in [0, 1) as in the official code."""
    return torch.rand(batch, num_patches, device=device, generator=generator)


def random_masks(batch: int, num_patches: int, mask_ratio: float = MASK_RATIO,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, L) masks, one per image (1 = masked), from ``torch.rand(batch, L)`` on ``generator``: the seeded
    default masks of the analysis functions (``torch.Generator().manual_seed(seed)``; a generator kept across
    batches continues the same stream)."""
    return masking_from_noise(torch.rand(batch, num_patches, generator=generator), mask_ratio).mask


def shared_noise(batch: int, num_patches: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One noise row repeated for every image: every image gets the identical mask (Eq. 7)."""
    return torch.rand(1, num_patches, device=device, generator=generator).expand(batch, num_patches).contiguous()


def two_view_noise(batch: int, num_patches: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Two independent masks per image (the LC-MAE views): (2, N, L), view 1 first."""
    return torch.rand(2, batch, num_patches, device=device, generator=generator)


def noise_for_mask(mask: torch.Tensor) -> torch.Tensor:
    """A noise tensor that reproduces a given (N, L) mask: visible positions get noise below every masked one.

    Every row must have the same number of visible positions (the encoder needs a rectangular batch).
    """
    mask = mask.float()
    counts = (mask == 0).sum(1)
    if counts.numel() and bool((counts != counts[0]).any()):
        raise ValueError("every image of a batch must have the same number of visible patches")
    L = mask.shape[1]
    # visible: [0, 1) in position order; masked: [1, 2)
    ramp = torch.arange(L, device=mask.device, dtype=torch.float32) / L
    return ramp.expand_as(mask) + mask


def mask_ratio_of(mask: torch.Tensor) -> float:
    """The ratio that ``masking_from_noise`` needs to reproduce an (N, L) mask."""
    L = mask.shape[1]
    keep = int((mask[0] == 0).sum())
    # int(L * (1 - r)) == keep must hold; pick r at the middle of the interval of valid ratios
    return max(0.0, 1.0 - (keep + 0.5) / L)
