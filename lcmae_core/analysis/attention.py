"""Attention probabilities of every encoder and decoder block, for Figs. 2, 4, 5, 6, A.1 and B.1.

timm's ``Attention`` calls the fused ``scaled_dot_product_attention``, which never materialises the
probabilities. We do not change that path. Instead a *forward hook* on each block's ``attn.qkv`` Linear reads the
projection the module has just computed, qkv (B, N, 3 * H * d), and from it and the module's own ``q_norm``,
``k_norm`` and ``scale`` forms::

    q, k = qkv split into heads                    # (B, H, N, d) each
    A = softmax(q_norm(q) * scale @ k_norm(k)^T)   # (B, H, N, N), rows sum to 1

the probabilities the non-fused timm path computes (attention dropout is not applied: analysis runs in eval mode;
an ``attn_mask`` is not applied either: ViT encoders and the MAE decoder use none). Reading qkv rather than
recomputing it from the block's input saves one Linear per block. The hook returns nothing, so the model's outputs
are bitwise identical with and without recording (tested). Hooks are removed when the ``AttentionRecorder``
context exits. Recorded maps are detached (computed under no_grad).

The same code serves this project's ``MaskedAutoencoderViT`` / ``LCMAE`` / ``BlockAutoencoderViT`` (encoder
``blocks`` and decoder ``decoder_blocks``, timm ``Block``s) and timm ``VisionTransformer`` (DINO, DeiT).

Token layout. Every map is over a sequence of ``num_prefix_tokens`` prefix tokens (the CLS token) followed by
patch tokens. ``AttentionMaps.positions`` (B, K) gives the grid index (row-major, ``row * grid_w + col``) of each
patch token in sequence order: ``arange(L)`` for the decoder and for an unmasked encoder, the visible positions
for a masked MAE encoder. Masks are (B, L) with **1 = masked, 0 = visible**, as in ``lcmae_core.masking``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn as nn

from ..masking import mask_ratio_of, noise_for_mask
from .geometry import decoder_blocks, encoder_blocks, expand_mask, is_mae, masked_positions, num_prefix_tokens

Reduce = Callable[[int, torch.Tensor], Any]


# ---------------------------------------------------------------------------------------------------------------
# the recomputation and the recorder
def attention_probs(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Recompute a timm ``Attention`` module's probabilities from its input.

    attn: a timm ``Attention`` (``qkv``, ``q_norm``, ``k_norm``, ``num_heads``, ``head_dim``, ``scale``).
    x: (B, N, C), the module's input. Returns A: (B, H, N, N), softmax over the last dimension (keys).
    """
    return probs_from_qkv(attn, attn.qkv(x))


def probs_from_qkv(attn: nn.Module, qkv: torch.Tensor) -> torch.Tensor:
    """qkv: (B, N, 3 * H * d), the output of ``attn.qkv`` -> A: (B, H, N, N) = softmax(q_norm(q) * scale @
    k_norm(k)^T), as timm's non-fused path computes it (no dropout)."""
    B, N, _ = qkv.shape
    H = attn.num_heads
    d = getattr(attn, "head_dim", None) or qkv.shape[-1] // (3 * H)
    qkv = qkv.reshape(B, N, 3, H, d).permute(2, 0, 3, 1, 4)  # (3, B, H, N, d)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # (B, H, N, d) each
    logits = (q * attn.scale) @ k.transpose(-2, -1)  # (B, H, N, N)
    return logits.softmax(dim=-1)


def check_attention_block(block: nn.Module, where: str = "block") -> nn.Module:
    """The block's ``attn`` module, after checking it is a timm-style attention with a fused ``qkv`` Linear."""
    attn = getattr(block, "attn", None)
    if attn is None or not isinstance(getattr(attn, "qkv", None), nn.Linear) or not hasattr(attn, "num_heads"):
        raise ValueError(f"{where} has no timm-style attention (block.attn with a qkv Linear and num_heads); "
                         "attention maps can be recorded only for timm Block/Attention transformers")
    return attn


class AttentionRecorder:
    """Context manager that records the attention probabilities of a list of transformer blocks.

    >>> with AttentionRecorder(model.decoder_blocks) as rec:
    ...     model.forward_decoder(latent, ids_restore)
    >>> rec.maps  # list, one (B, H, N, N) tensor per block, in block order

    reduce: optional ``fn(layer_index, A) -> anything``; when given, ``maps[l]`` holds ``fn(l, A)`` instead of A, so a
    streaming analysis keeps only what it needs (one layer's A is alive at a time). Each forward overwrites
    ``maps``; read or reduce them before the next batch.
    """

    def __init__(self, blocks: Sequence[nn.Module], reduce: Reduce | None = None):
        self.blocks = list(blocks)
        if not self.blocks:
            raise ValueError("no blocks to record; pass e.g. model.blocks or model.decoder_blocks")
        self.attns = [check_attention_block(b, f"block {i}") for i, b in enumerate(self.blocks)]
        self.reduce = reduce
        self.maps: list[Any] = [None] * len(self.blocks)
        self._handles: list = []

    def _hook(self, index: int):
        attn = self.attns[index]

        def hook(qkv_module: nn.Module, args: tuple, qkv: torch.Tensor) -> None:
            with torch.no_grad():
                a = probs_from_qkv(attn, qkv.detach())  # (B, H, N, N)
                self.maps[index] = self.reduce(index, a) if self.reduce is not None else a
            return None  # never change the forward pass

        return hook

    def clear(self) -> None:
        self.maps = [None] * len(self.blocks)

    def __enter__(self) -> "AttentionRecorder":
        if self._handles:
            raise RuntimeError("this AttentionRecorder is already active; use a new one")
        self.clear()
        for i, attn in enumerate(self.attns):
            self._handles.append(attn.qkv.register_forward_hook(self._hook(i)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


# ---------------------------------------------------------------------------------------------------------------
# the maps of a model
def _masked_forward_args(mask: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(mask_ratio, noise) that make ``forward_encoder`` reproduce ``mask`` (B, L), visible tokens in image order."""
    return mask_ratio_of(mask), noise_for_mask(mask)


class AttentionMaps(NamedTuple):
    """maps: one (B, H, N, N) tensor per block (or whatever ``reduce`` returned), N = prefix + K tokens.
    positions: (B, K) grid index of each patch token in sequence order. mask: (B, L), 1 = masked, or None.
    output: the forward's result (encoder latent (B, 1 + K, D) / decoder pred (B, L, P) / timm features)."""

    maps: list
    positions: torch.Tensor
    num_prefix_tokens: int
    mask: torch.Tensor | None
    output: torch.Tensor


@torch.no_grad()
def encoder_attention(model: nn.Module, imgs: torch.Tensor, mask: torch.Tensor | None = None,
                      reduce: Reduce | None = None) -> AttentionMaps:
    """Attention of every encoder block (Figs. 5, 6, A.1).

    imgs: (B, C, H, W). For an MAE-family model, ``mask=None`` means **mask ratio 0: every token visible, in image
    order** (how the paper's encoder attention distance is measured); a mask (L,) or (B, L) runs the masked encoder
    on the visible tokens only. For a timm ``VisionTransformer`` the mask must be None.
    Returns ``AttentionMaps`` with maps (B, H, 1 + K, 1 + K) per block.
    """
    B = imgs.shape[0]
    if is_mae(model):
        L = model.num_patches
        m = expand_mask(mask, B, L).to(imgs.device) if mask is not None else torch.zeros(B, L, device=imgs.device)
        ratio, noise = _masked_forward_args(m)
        with AttentionRecorder(encoder_blocks(model), reduce) as rec:
            latent, mask_out, ids_restore = model.forward_encoder(imgs, ratio, noise)
        K = latent.shape[1] - 1
        ids_keep = torch.argsort(ids_restore, dim=1)[:, :K]  # (B, K) grid positions of the encoder's tokens
        return AttentionMaps(rec.maps, ids_keep, 1, mask_out if mask is not None else None, latent)
    if mask is not None:
        raise ValueError("a timm VisionTransformer encodes every token; call encoder_attention without a mask")
    with AttentionRecorder(encoder_blocks(model), reduce) as rec:
        feats = model.forward_features(imgs)
    L = feats.shape[1] - num_prefix_tokens(model)
    positions = torch.arange(L, device=imgs.device).expand(B, L)
    return AttentionMaps(rec.maps, positions, num_prefix_tokens(model), None, feats)


@torch.no_grad()
def decoder_attention(model: nn.Module, imgs: torch.Tensor, mask: torch.Tensor,
                      reduce: Reduce | None = None) -> AttentionMaps:
    """Attention of every decoder block over the full sequence [CLS, all L positions in image order] (Figs. 2, 4).

    imgs: (B, C, H, W); mask: (L,), (1, L) or (B, L), 1 = masked (mask tokens), the same count in every row. A
    (L,)/(1, L) mask is shared by all images, as Eq. 7 needs (``lcmae_core.masking.shared_noise`` makes one).
    Returns ``AttentionMaps`` with maps (B, H, 1 + L, 1 + L) per decoder block and ``output`` = pred (B, L, P).
    """
    blocks = decoder_blocks(model)
    B, L = imgs.shape[0], model.num_patches
    m = expand_mask(mask, B, L).to(imgs.device)
    ratio, noise = _masked_forward_args(m)
    latent, mask_out, ids_restore = model.forward_encoder(imgs, ratio, noise)
    with AttentionRecorder(blocks, reduce) as rec:
        pred = model.forward_decoder(latent, ids_restore)
    positions = torch.arange(L, device=imgs.device).expand(B, L)
    return AttentionMaps(rec.maps, positions, 1, mask_out, pred)


# ---------------------------------------------------------------------------------------------------------------
# selecting rows
def masked_query_rows(attn: torch.Tensor, mask: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """The decoder attention rows of the masked-query positions (the A_{l,i} of Eq. 7, all keys kept).

    attn: (B, H, P + L, P + L) over [prefix, L grid positions in image order]; mask: (B, L) or (L,), 1 = masked.
    Returns (B, H, k, P + L): row j is the query at the j-th masked position (ascending grid index).
    """
    B, H, N, _ = attn.shape
    mask = expand_mask(mask, B, N - num_prefix_tokens).to(attn.device)
    rows = masked_positions(mask) + num_prefix_tokens  # (B, k) sequence indices
    idx = rows[:, None, :, None].expand(B, H, rows.shape[1], N)  # (B, H, k, N)
    return torch.gather(attn, 2, idx)


@torch.no_grad()
def query_attention_maps(model: nn.Module, imgs: torch.Tensor, mask: torch.Tensor, queries: torch.Tensor,
                         layers: Sequence[int] | None = None) -> torch.Tensor:
    """Decoder attention of chosen queries, for Fig. 4 / B.1.

    imgs: (B, C, H, W); mask: (L,) or (B, L), 1 = masked; queries: (Q, 2) rows of (image index, grid position).
    layers: 0-based decoder block indices (default all). Returns (Q, len(layers), H, 1 + L): keys are [CLS, L grid
    positions]; only the queried rows are kept while the model runs.
    """
    queries = torch.as_tensor(queries, dtype=torch.long).reshape(-1, 2).to(imgs.device)
    nblocks = len(decoder_blocks(model))
    layers = list(range(nblocks)) if layers is None else [int(l) for l in layers]
    bad = [l for l in layers if not 0 <= l < nblocks]
    if bad:
        raise ValueError(f"decoder layers {bad} do not exist; the decoder has blocks 0..{nblocks - 1}")
    if bool((queries[:, 0] >= imgs.shape[0]).any() | (queries[:, 1] >= model.num_patches).any()):
        raise ValueError(f"queries must be (image index < {imgs.shape[0]}, grid position < {model.num_patches})")
    wanted = set(layers)

    def pick(index: int, a: torch.Tensor):  # a: (B, H, N, N) -> (Q, H, N)
        return a[queries[:, 0], :, queries[:, 1] + 1, :] if index in wanted else None

    maps = decoder_attention(model, imgs, mask, reduce=pick).maps
    return torch.stack([maps[l] for l in layers], dim=1)  # (Q, layers, H, 1 + L)


__all__ = ["AttentionRecorder", "AttentionMaps", "attention_probs", "probs_from_qkv", "check_attention_block",
           "encoder_attention", "decoder_attention", "masked_query_rows", "query_attention_maps"]
