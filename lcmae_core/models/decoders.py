"""The decoders of Sec. 4.1 and Table 2.

Every decoder maps the full token sequence on the g x g grid (visible tokens and mask tokens, position
embeddings already added) to hidden states of the same width. The model then applies ``decoder_norm`` and
``decoder_pred``, so a hidden state exists for every decoder; LC-MAE's projector reads it.

- ``"transformer"``: the official MAE decoder, a stack of timm ``Block``s over [CLS, tokens...]. Global.
- ``"gaussian"``: a fixed, normalised 5 x 5 Gaussian weighted average over the grid (sigma = 1 patch),
  followed by a residual MLP block. The paper: "a nonparametric weighted average operation, in which the
  weights are set as a normalised two-dimensional Gaussian, with sigma = 1 and the size of the receptive field
  is about 5x5. A multi-layer perceptron (MLP) block is adopted to predict the masked pixels."
- ``"conv"``: a single ``Conv2d`` with kernel 5 over the grid. The paper: "a convolutional layer with a kernel
  size of 5 as the decoder."

Both local decoders see exactly the 5 x 5 token neighbourhood of each position and nothing else: the CLS token
is not used, and the borders are zero padded (the Gaussian renormalises its weights over the positions that
lie inside the grid, so it stays a weighted *average* at the border).
"""

from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import Mlp

DECODERS = ("transformer", "gaussian", "conv")


def gaussian_kernel_2d(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """(size, size) Gaussian weights on integer offsets, normalised to sum to 1."""
    if size % 2 == 0:
        raise ValueError(f"the Gaussian window must be odd, got {size}")
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _to_grid(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(N, L, D) row-major tokens -> (N, D, gh, gw)."""
    N, L, D = x.shape
    return x.transpose(1, 2).reshape(N, D, grid[0], grid[1])


def _from_grid(x: torch.Tensor) -> torch.Tensor:
    """(N, D, gh, gw) -> (N, L, D)."""
    return x.flatten(2).transpose(1, 2)


class GaussianAverage(nn.Module):
    """Non-parametric weighted average of each token's k x k neighbourhood: (N, L, D) -> (N, L, D)."""

    def __init__(self, grid: tuple[int, int], kernel_size: int = 5, sigma: float = 1.0):
        super().__init__()
        self.grid = tuple(grid)
        self.kernel_size = kernel_size
        self.sigma = sigma
        k = gaussian_kernel_2d(kernel_size, sigma)
        self.register_buffer("kernel", k[None, None], persistent=False)  # (1, 1, k, k)
        # the weight mass inside the grid at each position, to renormalise at the border
        mass = F.conv2d(torch.ones(1, 1, *self.grid), self.kernel, padding=kernel_size // 2)
        self.register_buffer("mass", mass, persistent=False)  # (1, 1, gh, gw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, L, D = x.shape
        g = _to_grid(x, self.grid).reshape(N * D, 1, *self.grid)  # (N*D, 1, gh, gw)
        y = F.conv2d(g, self.kernel.to(x.dtype), padding=self.kernel_size // 2) / self.mass.to(x.dtype)
        return _from_grid(y.reshape(N, D, *self.grid))


class GaussianDecoder(nn.Module):
    """Gaussian weighted average, then a residual MLP block (LayerNorm -> Linear -> GELU -> Linear)."""

    def __init__(self, dim: int, grid: tuple[int, int], mlp_ratio: float = 4.0, kernel_size: int = 5,
                 sigma: float = 1.0, norm_layer=nn.LayerNorm):
        super().__init__()
        self.average = GaussianAverage(grid, kernel_size, sigma)
        self.norm = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, D) -> (N, L, D)
        x = self.average(x)
        return x + self.mlp(self.norm(x))


class ConvDecoder(nn.Module):
    """A single k x k convolution over the token grid: (N, L, D) -> (N, L, D)."""

    def __init__(self, dim: int, grid: tuple[int, int], kernel_size: int = 5):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"the conv decoder's kernel must be odd, got {kernel_size}")
        self.grid = tuple(grid)
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _from_grid(self.conv(_to_grid(x, self.grid)))


__all__ = ["DECODERS", "GaussianAverage", "GaussianDecoder", "ConvDecoder", "gaussian_kernel_2d"]
