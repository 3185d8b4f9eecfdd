"""Attention distance (Dosovitskiy et al. [10]), for Figs. 5, 6 and A.1 (Sec. 4.2).

"Attention distance is defined as the average distance between the query tokens and key tokens, multiplied by the
attention weights." For one head::

    d = mean over images b and queries q of  sum_k A'[b, q, k] * || c_q - c_k ||_2

where A' is the attention restricted to patch tokens (prefix/CLS rows and columns dropped) with each row
renormalised to sum to 1, and c is a patch centre in pixels (patch_size x its grid coordinates). The result is in
pixels, one value per head; the figures plot it per layer.

Streaming: ``attention_distance_curves`` reduces every layer's maps to per-head sums inside the recording hook, so
only one layer's (B, H, N, N) maps are alive at a time and nothing is kept across batches.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ._batches import iter_image_batches
from .attention import decoder_attention, encoder_attention
from .geometry import (decoder_blocks, encoder_blocks, expand_mask, grid_size_of, is_mae, num_prefix_tokens,
                       patch_size_of)
from ..masking import MASK_RATIO, random_masks


def grid_of(num_tokens: int, grid_size: tuple[int, int] | int | None = None) -> tuple[int, int]:
    """The (rows, cols) patch grid of ``num_tokens`` patch tokens: square unless ``grid_size`` is given (then
    ``grid_size`` is returned as a pair)."""
    if grid_size is not None:
        g = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        return int(g[0]), int(g[1])
    g = math.isqrt(num_tokens)
    if g * g != num_tokens:
        raise ValueError(f"{num_tokens} patch tokens do not form a square grid; check num_prefix_tokens or pass "
                         "grid_size=(rows, cols)")
    return g, g


def patch_centres(positions: torch.Tensor, grid_w: int, patch_size: float) -> torch.Tensor:
    """positions (..., K) row-major grid indices -> (..., K, 2) pixel coordinates (row, col) of the patch centres.

    The half-patch offset is common to all patches and cancels in distances."""
    rows = torch.div(positions, grid_w, rounding_mode="floor")
    cols = positions - rows * grid_w
    return torch.stack([rows, cols], dim=-1).to(torch.float32) * patch_size + patch_size / 2


def patch_distance_matrix(grid_size: tuple[int, int] | int, patch_size: float,
                          positions: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean pixel distances between patch centres.

    positions None: (n, n) over the whole grid, n = rows * cols, row-major. positions (B, K): (B, K, K) between the
    given grid indices (a masked encoder's visible tokens)."""
    gh, gw = grid_of(0, grid_size)
    if positions is None:
        positions = torch.arange(gh * gw)
    c = patch_centres(positions, gw, patch_size).double()  # (n, 2) or (B, K, 2)
    return torch.cdist(c, c).float()  # (n, n) or (B, K, K)


def patch_attention(attn: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """attn (B, H, P + K, P + K) -> (B, H, K, K): prefix rows and columns dropped, each row renormalised to sum 1."""
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attn must be (B, H, N, N), got {tuple(attn.shape)}")
    if not 0 <= num_prefix_tokens < attn.shape[-1]:
        raise ValueError(f"num_prefix_tokens={num_prefix_tokens} leaves no patch tokens of N={attn.shape[-1]}")
    a = attn[:, :, num_prefix_tokens:, num_prefix_tokens:]  # (B, H, K, K)
    return a / a.sum(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)


def attention_distance_per_query(attn: torch.Tensor, patch_size: float, num_prefix_tokens: int = 1,
                                 grid_size: tuple[int, int] | int | None = None,
                                 positions: torch.Tensor | None = None) -> torch.Tensor:
    """The attention-weighted mean distance of each query: attn (B, H, P + K, P + K) -> (B, H, K) pixels.

    positions: (B, K) grid index of each patch token (default: the K tokens are the full grid in row-major order,
    square unless ``grid_size`` is given). With positions, ``grid_size`` (rows, cols) is required.
    """
    a = patch_attention(attn, num_prefix_tokens)  # (B, H, K, K)
    B, H, K, _ = a.shape
    if positions is None:
        d = patch_distance_matrix(grid_of(K, grid_size), patch_size).to(a)  # (K, K)
        return torch.einsum("bhqk,qk->bhq", a, d)
    if grid_size is None:
        raise ValueError("with positions, pass grid_size=(rows, cols) of the full patch grid")
    if tuple(positions.shape) != (B, K):
        raise ValueError(f"positions must be (B, K) = ({B}, {K}), got {tuple(positions.shape)}")
    d = patch_distance_matrix(grid_size, patch_size, positions.to(a.device)).to(a)  # (B, K, K)
    return torch.einsum("bhqk,bqk->bhq", a, d)


def attention_distance(attn: torch.Tensor, patch_size: float, num_prefix_tokens: int = 1,
                       grid_size: tuple[int, int] | int | None = None, positions: torch.Tensor | None = None,
                       query_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean attention distance per head, in pixels (Figs. 5, 6, A.1): attn (B, H, N, N) -> (H,).

    N = num_prefix_tokens + g*g. Prefix rows/columns are dropped and rows renormalised; the distance is averaged
    over queries and images. query_mask (B, K), optional: average only over queries where it is 1 (e.g. the
    decoder's masked positions).
    """
    s, n = _distance_sums(attn, patch_size, num_prefix_tokens, grid_size, positions, query_mask)
    return (s / n).to(attn.dtype)


def attention_entropy_per_query(attn: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """The entropy of each query's attention over the patch keys, as a fraction of its maximum log K (1: uniform
    over every patch, 0: all weight on one patch): attn (B, H, P + K, P + K) -> (B, H, K).

    exp(entropy) is the effective number of keys a query attends to; the fraction f means K**f of the K keys."""
    a = patch_attention(attn, num_prefix_tokens).double()  # (B, H, K, K)
    K = a.shape[-1]
    if K < 2:
        raise ValueError("attention entropy needs at least two patch keys")
    h = -(a * a.clamp_min(1e-30).log()).sum(-1)  # (B, H, K)
    return (h / math.log(K)).to(attn.dtype)


def attention_entropy(attn: torch.Tensor, num_prefix_tokens: int = 1,
                      query_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean attention entropy per head as a fraction of its maximum: attn (B, H, N, N) -> (H,)."""
    s, n = _query_sums(attention_entropy_per_query(attn, num_prefix_tokens), query_mask)
    return (s / n).to(attn.dtype)


def _distance_sums(attn, patch_size, num_prefix_tokens, grid_size, positions, query_mask):
    """(sum over images and queries of the per-query distance (H,), number of queries summed)."""
    d = attention_distance_per_query(attn, patch_size, num_prefix_tokens, grid_size, positions)  # (B, H, K)
    return _query_sums(d, query_mask)


def _query_sums(d: torch.Tensor, query_mask: torch.Tensor | None):
    """d (B, H, K) per-query values -> (their sum over images and the selected queries (H,), queries summed)."""
    if query_mask is None:
        return d.sum((0, 2)).double(), d.shape[0] * d.shape[2]
    w = query_mask.to(d)[:, None, :]  # (B, 1, K)
    n = float(query_mask.sum())
    if n == 0:
        raise ValueError("query_mask selects no queries")
    return (d * w).sum((0, 2)).double(), n


def uniform_attention_distance(grid_size: tuple[int, int] | int, patch_size: float,
                               positions: torch.Tensor | None = None) -> float:
    """The attention distance a query would have if it attended uniformly to every patch (pixels): the mean
    distance from the query positions (default: all) to all g*g patch centres, averaged over the queries.

    The baseline against which "attends to nearby tokens" is judged (Fig. 4): a decoder that ignores position
    and content spreads its attention evenly, and its distance is this number."""
    d = patch_distance_matrix(grid_size, patch_size).double()  # (n, n)
    rows = d if positions is None else d[torch.as_tensor(positions, dtype=torch.long).reshape(-1)]
    if rows.numel() == 0:
        raise ValueError("no query positions")
    return float(rows.mean())


QUERIES = ("all", "masked", "visible")
STATISTICS = ("distance", "entropy", "both")


def attention_entropy_curves(model: nn.Module, images, part: str = "encoder", mask: torch.Tensor | None = None,
                             **kwargs) -> torch.Tensor:
    """Per-layer, per-head attention entropy over the patch keys, as a fraction of its maximum -> (layers, heads).

    The same streaming and arguments as ``attention_distance_curves``. It tells whether attention formed at all:
    a fraction near 1 is attention as flat as uniform (and as a random-init model's), whatever its distance."""
    return attention_distance_curves(model, images, part, mask, statistic="entropy", **kwargs)


@torch.no_grad()
def attention_distance_curves(model: nn.Module, images, part: str = "encoder", mask: torch.Tensor | None = None,
                              mask_ratio: float = MASK_RATIO, queries: str = "all", batch_size: int = 64, device=None,
                              limit: int | None = None, seed: int = 0, statistic: str = "distance") -> torch.Tensor:
    """Per-layer, per-head attention distance over a set of images, streamed: -> (layers, heads), pixels.
    (``statistic="entropy"``: the attention entropy as a fraction of its maximum instead; see
    ``attention_entropy_curves``.)

    model: this project's MAE family (MAE, LC-MAE, block AE) or a timm ``VisionTransformer`` (DINO, DeiT).
    images: a tensor (N, C, H, W) or an iterable of batches (a DataLoader of (images, labels) works).
    part="encoder" (Figs. 5, 6, A.1): for an MAE, ``mask=None`` means **mask ratio 0, all tokens visible**, the
    setting in which the paper compares MAE with DINO and DeiT; a mask (L,) runs the masked encoder and measures
    distances between the visible tokens. A timm ViT always sees all tokens.
    part="decoder": the full decoder sequence [CLS, L positions] with ``mask`` (L,) shared by every image, or, if
    None, a fresh random mask per image at ``mask_ratio`` (seeded by ``seed``). ``queries`` picks which query rows
    are averaged: "all" (default), "masked" (mask tokens) or "visible".
    Only per-head sums are kept across batches; one layer's maps are alive at a time.
    """
    if part not in ("encoder", "decoder"):
        raise ValueError(f"part must be 'encoder' or 'decoder', got {part!r}")
    if queries not in QUERIES:
        raise ValueError(f"queries must be one of {QUERIES}, got {queries!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if part == "encoder" and queries != "all":
        raise ValueError("queries='masked'/'visible' applies to the decoder; the encoder has only visible tokens")
    model.eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    p = patch_size_of(model)
    grid = grid_size_of(model)
    prefix = num_prefix_tokens(model)
    encoder_blocks(model) if part == "encoder" else decoder_blocks(model)  # fail early without attention blocks
    gen = torch.Generator(device="cpu").manual_seed(seed)
    sums = None
    count = 0.0
    for imgs in iter_image_batches(images, batch_size, dev, limit):
        B = imgs.shape[0]
        if part == "encoder":
            positions = None  # all tokens, in image order
            if is_mae(model) and mask is not None:  # the masked encoder: its visible positions, ascending
                m = expand_mask(mask, B, model.num_patches).to(dev)
                positions = (m == 0).nonzero()[:, 1].reshape(B, -1)  # (B, K)

            def reduce(i, a, positions=positions):  # a: (B, H, N, N) -> ((H,) or (2, H), count)
                return stat_sums(statistic, a, p, prefix, grid, positions, None)

            res = encoder_attention(model, imgs, mask, reduce=reduce)
        else:
            L = model.num_patches
            m = (expand_mask(mask, B, L) if mask is not None else
                 random_masks(B, L, mask_ratio, gen)).to(dev)
            qmask = {"all": None, "masked": m, "visible": 1 - m}[queries]

            def reduce(i, a, qmask=qmask):
                return stat_sums(statistic, a, p, 1, grid, None, qmask)

            res = decoder_attention(model, imgs, m, reduce=reduce)
        layer_sums = torch.stack([s for s, _ in res.maps])  # (layers, H) or (layers, 2, H)
        sums = layer_sums if sums is None else sums + layer_sums
        count += res.maps[0][1]
    if sums is None:
        raise ValueError("no images: the image source was empty")
    out = (sums / count).float()
    if statistic == "both":
        return {"distance": out[:, 0], "entropy": out[:, 1]}
    return out


def attention_stats_curves(model: nn.Module, images, part: str = "encoder", mask: torch.Tensor | None = None,
                           **kwargs) -> dict[str, torch.Tensor]:
    """{"distance", "entropy"}: both per-layer, per-head curves (``attention_distance_curves``,
    ``attention_entropy_curves``) from one pass over the images, half the cost of two."""
    return attention_distance_curves(model, images, part, mask, statistic="both", **kwargs)


def stat_sums(statistic, a, patch_size, prefix, grid, positions, qmask):
    """One layer's attention maps a (B, H, N, N) -> (per-head sums over images and selected queries of the
    distance, the entropy fraction, or both stacked (2, H); the number of queries summed)."""
    if statistic == "entropy":
        return _query_sums(attention_entropy_per_query(a, prefix), qmask)
    d = _distance_sums(a, patch_size, prefix, grid, positions, qmask)
    if statistic == "distance":
        return d
    e, _ = _query_sums(attention_entropy_per_query(a, prefix), qmask)
    return torch.stack([d[0], e]), d[1]


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-D tensor, ties given their mean rank (as scipy.stats.rankdata)."""
    x = x.double()
    eq = (x[:, None] == x[None, :]).double()
    less = (x[:, None] > x[None, :]).double()
    return less.sum(1) + (eq.sum(1) + 1) / 2


def spearman(x, y) -> float:
    """Spearman's rank correlation of two 1-D sequences (ties: mean ranks); nan when one of them is constant."""
    rx, ry = _ranks(torch.as_tensor(x).reshape(-1)), _ranks(torch.as_tensor(y).reshape(-1))
    if rx.numel() != ry.numel() or rx.numel() < 2:
        raise ValueError(f"need two sequences of equal length >= 2, got {rx.numel()} and {ry.numel()}")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = (rx.norm() * ry.norm()).item()
    return float("nan") if den == 0 else float((rx @ ry).item() / den)


def distance_trend(curves: dict[float, torch.Tensor], deep: int | None = None) -> dict:
    """How attention distance moves with a knob (Fig. 6: the mask ratio), from per-model (layers, heads) curves.

    curves: {knob value: (layers, heads) tensor from ``attention_distance_curves``}, all of one depth.
    deep: how many of the last layers count as "deeper" (default: the deeper half; the rest are "shallower").
    Returns a dict of plain floats:

    - ``mean``: {knob: mean distance over layers and heads};
    - ``spearman``: Spearman's rank correlation between the knob and ``mean`` (1: strictly increasing);
    - ``monotone``: True when ``mean`` strictly increases with the knob;
    - ``spread``: [per layer: max - min over knob values of the head-mean distance] (pixels);
    - ``spread_shallow`` / ``spread_deep``: the mean spread over the shallower / deeper layers.
    """
    if len(curves) < 2:
        raise ValueError("need curves for at least two knob values")
    keys = sorted(curves)
    per_layer = torch.stack([torch.as_tensor(curves[k]).float().mean(-1) for k in keys])  # (knobs, layers)
    L = per_layer.shape[1]
    if L < 2:
        raise ValueError("need at least two layers to compare shallow and deep layers")
    deep = deep or L // 2
    if not 0 < deep < L:
        raise ValueError(f"deep must be in 1..{L - 1}, got {deep}")
    means = per_layer.mean(1)  # (knobs,)
    spread = per_layer.max(0).values - per_layer.min(0).values  # (layers,)
    return {"mean": {k: float(m) for k, m in zip(keys, means)},
            "spearman": spearman(torch.tensor(keys, dtype=torch.float64), means),
            "monotone": bool((means[1:] > means[:-1]).all()),
            "spread": [float(v) for v in spread],
            "spread_shallow": float(spread[:L - deep].mean()), "spread_deep": float(spread[L - deep:].mean())}


__all__ = ["attention_stats_curves", "attention_entropy", "attention_entropy_per_query", "attention_entropy_curves",
           "attention_distance", "uniform_attention_distance", "attention_distance_per_query",
           "attention_distance_curves", "patch_attention", "patch_distance_matrix", "patch_centres", "grid_of",
           "spearman", "distance_trend"]
