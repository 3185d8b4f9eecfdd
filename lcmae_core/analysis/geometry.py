"""Where things are in a ViT: which blocks a model has, its patch grid and prefix tokens, and masks (expanding,
the shared seeded mask of Eqs. 7 and 8, masked positions, Fig. 4's query picking). Masks are (B, L) or (L,) with
**1 = masked, 0 = visible**, as in ``lcmae_core.masking``; grid positions are row-major (``row * grid_w + col``)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..masking import MASK_RATIO, random_masks


# ---------------------------------------------------------------------------------------------------------------
# which blocks a model has
def is_mae(model: nn.Module) -> bool:
    """True for this project's ``MaskedAutoencoderViT`` family (MAE, LC-MAE, block AE): it has ``forward_encoder``
    and ``decoder_embed``."""
    return hasattr(model, "forward_encoder") and hasattr(model, "decoder_embed")


def encoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The encoder's transformer blocks: ``model.blocks`` (MAE family and timm ``VisionTransformer``)."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ValueError(f"{type(model).__name__} has no .blocks; pass a MaskedAutoencoderViT or a timm "
                         "VisionTransformer")
    return blocks


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The decoder's transformer blocks, ``model.decoder_blocks``; only the transformer decoder has attention."""
    blocks = getattr(model, "decoder_blocks", None)
    if blocks is None:
        kind = getattr(model, "decoder_type", None)
        raise ValueError(f"{type(model).__name__} has no transformer decoder (decoder={kind!r}); attention maps "
                         "exist only for decoder='transformer'")
    return blocks


def num_prefix_tokens(model: nn.Module) -> int:
    """Prefix tokens before the patch tokens: 1 (CLS) for the MAE family, ``model.num_prefix_tokens`` for timm."""
    return 1 if is_mae(model) else int(getattr(model, "num_prefix_tokens", 1))


def patch_size_of(model: nn.Module) -> int:
    p = model.patch_embed.patch_size
    return int(p[0] if isinstance(p, (tuple, list)) else p)


def grid_size_of(model: nn.Module) -> tuple[int, int]:
    return tuple(int(g) for g in model.patch_embed.grid_size)


# ---------------------------------------------------------------------------------------------------------------
# masks
def expand_mask(mask: torch.Tensor, batch: int, num_patches: int) -> torch.Tensor:
    """A mask given as (L,), (1, L) or (B, L) -> (B, L) float, 1 = masked. (L,)/(1, L): one mask for every image."""
    mask = torch.as_tensor(mask)
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    if mask.dim() != 2 or mask.shape[1] != num_patches or mask.shape[0] not in (1, batch):
        raise ValueError(f"mask must be (L,), (1, L) or (B, L) with L={num_patches}, B={batch}; got "
                         f"{tuple(mask.shape)}")
    mask = mask.float().expand(batch, num_patches)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must be binary, 1 = masked and 0 = visible")
    return mask


def shared_mask(num_patches: int, mask_ratio: float = MASK_RATIO, seed: int = 0) -> torch.Tensor:
    """One random mask (L,) for every image (Eqs. 7, 8, Fig. 4), drawn from ``torch.Generator().manual_seed(seed)``
    exactly as ``attention_similarity_curve`` / ``semantic_similarity_curve`` draw their default. 1 = masked."""
    return random_masks(1, num_patches, mask_ratio, torch.Generator().manual_seed(seed))[0]


def pick_masked_queries(mask: torch.Tensor, n: int = 2, seed: int = 0) -> list[int]:
    """``n`` distinct masked grid positions of a shared mask (L,), chosen with a seeded generator (Fig. 4's
    "auto" queries), in the order drawn. Deterministic for a given mask, n and seed."""
    pos = torch.as_tensor(mask).reshape(-1).bool().nonzero()[:, 0]  # (k,) masked positions, ascending
    if n > pos.numel():
        raise ValueError(f"asked for {n} masked queries but the mask has only {pos.numel()} masked positions")
    g = torch.Generator().manual_seed(seed)
    return [int(pos[i]) for i in torch.randperm(pos.numel(), generator=g)[:n]]


def masked_positions(mask: torch.Tensor) -> torch.Tensor:
    """mask (B, L), 1 = masked, the same count k in every row -> (B, k) masked grid positions, ascending."""
    if mask.dim() != 2:
        raise ValueError(f"mask must be (B, L), got {tuple(mask.shape)}")
    counts = mask.bool().sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError("every image must have the same number of masked patches to stack the query rows")
    B, k = mask.shape[0], int(counts[0])
    return mask.bool().nonzero()[:, 1].reshape(B, k)  # nonzero is row-major: ascending within each row
