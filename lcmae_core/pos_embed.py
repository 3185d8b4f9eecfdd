"""Fixed 2-D sine-cosine position embeddings, in facebookresearch/mae's channel order.

For an embedding of D channels on a g x g grid, the first D/2 channels encode the column (x) coordinate and
the last D/2 the row (y) coordinate. Within each half, the first D/4 channels are sines and the last D/4
cosines of ``pos * omega_k`` with ``omega_k = 10000 ** (-k / (D/4))``, k = 0 .. D/4 - 1. Positions are
numbered row-major, the order in which ``PatchEmbed`` flattens patches. An optional row of zeros at index 0
serves the CLS token.
"""

from __future__ import annotations

import torch


def sincos_1d(embed_dim: int, pos: torch.Tensor) -> torch.Tensor:
    """pos: (M,) -> (M, embed_dim), [sin | cos], computed in float64."""
    if embed_dim % 2:
        raise ValueError(f"1-D sin-cos embedding needs an even dimension, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega  # (D/2,)
    out = pos.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)  # (M, D/2)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)  # (M, D)


def sincos_2d(embed_dim: int, grid_size: int, cls_token: bool = False) -> torch.Tensor:
    """The 2-D embedding: (g*g, D), or (1 + g*g, D) with a leading zero row for CLS. Returned as float32."""
    if embed_dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a dimension divisible by 4, got {embed_dim}")
    coords = torch.arange(grid_size, dtype=torch.float64)
    row, col = torch.meshgrid(coords, coords, indexing="ij")  # (g, g) each; flattened row-major
    emb = torch.cat(
        [sincos_1d(embed_dim // 2, col.reshape(-1)),  # first half: column (x) coordinate
         sincos_1d(embed_dim // 2, row.reshape(-1))],  # second half: row (y) coordinate
        dim=1,
    )  # (g*g, D)
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=torch.float64), emb], dim=0)
    return emb.float()
