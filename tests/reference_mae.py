"""An independent, functional reference of the MAE forward pass, written from the math.

It takes a state dict in the facebookresearch/mae key format (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``, ``decoder_embed``, ``mask_token``,
``decoder_pos_embed``, ``decoder_blocks.{j}.*``, ``decoder_norm``, ``decoder_pred``) and computes
(loss, pred, mask) with plain tensor ops only: no ``torch.nn`` modules, no fused attention, no ``F.layer_norm``,
no ``F.gelu``, no convolution. It shares no code with ``lcmae_core``.

The math:

- patch embedding: a linear map of each p x p x C patch (weights laid out (D, C, p, q), as a stride-p conv),
  patches numbered row-major, plus the position embedding (row 0 of ``pos_embed`` belongs to CLS);
- masking: ``len_keep = int(L * (1 - mask_ratio))``; the len_keep positions with the smallest noise are visible
  and enter the encoder in ascending order of noise; mask = 1 on the others;
- encoder: [CLS + pos_embed[0], visible tokens] through pre-norm ViT blocks
  ``x = x + Attn(LN1(x)); x = x + MLP(LN2(x))`` (LayerNorm eps 1e-6, qkv with bias, softmax(q k^T / sqrt(d)),
  exact erf GELU), then a final LayerNorm;
- decoder: a linear map to the decoder width; every masked position gets ``mask_token``, every visible one its
  encoded token, in image order; CLS first; plus ``decoder_pos_embed``; blocks; LayerNorm; linear to p*p*C;
  CLS dropped;
- loss: targets are the patches flattened in (p, q, c) order, normalised per patch by mean and unbiased
  variance (+1e-6) when norm_pix is on; the squared error is averaged over each patch's values, then over the
  masked patches.
"""

from __future__ import annotations

import math

import torch

LN_EPS = 1e-6
NORM_PIX_EPS = 1e-6


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    y = torch.einsum("...i,oi->...o", x, w)
    return y if b is None else y + b


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float = LN_EPS) -> torch.Tensor:
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # biased, as LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def softmax(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def attention(x: torch.Tensor, sd: dict, pre: str, num_heads: int) -> torch.Tensor:
    N, T, D = x.shape
    d = D // num_heads
    qkv = linear(x, sd[pre + "qkv.weight"], sd[pre + "qkv.bias"])  # (N, T, 3D): [q | k | v], heads contiguous
    q, k, v = qkv.reshape(N, T, 3, num_heads, d).unbind(dim=2)  # (N, T, H, d) each
    scores = torch.einsum("nthd,nshd->nhts", q, k) / math.sqrt(d)
    out = torch.einsum("nhts,nshd->nthd", softmax(scores), v).reshape(N, T, D)
    return linear(out, sd[pre + "proj.weight"], sd[pre + "proj.bias"])


def block(x: torch.Tensor, sd: dict, pre: str, num_heads: int) -> torch.Tensor:
    h = layer_norm(x, sd[pre + "norm1.weight"], sd[pre + "norm1.bias"])
    x = x + attention(h, sd, pre + "attn.", num_heads)
    h = layer_norm(x, sd[pre + "norm2.weight"], sd[pre + "norm2.bias"])
    h = gelu(linear(h, sd[pre + "mlp.fc1.weight"], sd[pre + "mlp.fc1.bias"]))
    return x + linear(h, sd[pre + "mlp.fc2.weight"], sd[pre + "mlp.fc2.bias"])


def num_blocks(sd: dict, prefix: str) -> int:
    return len({k.split(".")[1] for k in sd if k.startswith(prefix)})


def to_patches(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p, q, C): patch (i, j) at index i * w + j, pixel (u, v) of channel c at [u, v, c]."""
    N, C, H, W = imgs.shape
    h, w = H // p, W // p
    x = imgs.reshape(N, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1)  # (N, h, w, p, q, C)
    return x.reshape(N, h * w, p, p, C)


def reference_mae_forward(sd: dict, imgs: torch.Tensor, noise: torch.Tensor, mask_ratio: float, norm_pix: bool,
                          num_heads: int, decoder_num_heads: int | None = None):
    """The official MAE forward from an official-format state dict. Returns (loss, pred (N, L, p*p*C), mask)."""
    decoder_num_heads = num_heads if decoder_num_heads is None else decoder_num_heads
    sd = {k: v.to(imgs.dtype) for k, v in sd.items()}
    w_pe = sd["patch_embed.proj.weight"]  # (D, C, p, q)
    p = w_pe.shape[-1]
    N = imgs.shape[0]
    patches = to_patches(imgs, p)  # (N, L, p, q, C)
    L = patches.shape[1]

    # --- embedding -----------------------------------------------------------------------------------------
    tokens = torch.einsum("nlpqc,dcpq->nld", patches, w_pe) + sd["patch_embed.proj.bias"]
    tokens = tokens + sd["pos_embed"][0, 1:]

    # --- masking -------------------------------------------------------------------------------------------
    len_keep = int(L * (1 - mask_ratio))
    order = torch.sort(noise, dim=1, stable=True).indices  # ascending noise
    keep = order[:, :len_keep]  # (N, K) visible positions, in encoder order
    mask = torch.ones(N, L, dtype=imgs.dtype)
    for n in range(N):
        mask[n, keep[n]] = 0.0
    visible = torch.stack([tokens[n, keep[n]] for n in range(N)])  # (N, K, D)

    # --- encoder -------------------------------------------------------------------------------------------
    cls = (sd["cls_token"][0, 0] + sd["pos_embed"][0, 0]).expand(N, 1, -1)
    x = torch.cat([cls, visible], dim=1)
    for i in range(num_blocks(sd, "blocks.")):
        x = block(x, sd, f"blocks.{i}.", num_heads)
    x = layer_norm(x, sd["norm.weight"], sd["norm.bias"])

    # --- decoder -------------------------------------------------------------------------------------------
    x = linear(x, sd["decoder_embed.weight"], sd["decoder_embed.bias"])  # (N, 1 + K, Dd)
    Dd = x.shape[-1]
    full = sd["mask_token"][0, 0].expand(N, L, Dd).clone()
    for n in range(N):
        full[n, keep[n]] = x[n, 1:]  # each visible token back at its position in the image
    x = torch.cat([x[:, :1], full], dim=1) + sd["decoder_pos_embed"][0]
    for j in range(num_blocks(sd, "decoder_blocks.")):
        x = block(x, sd, f"decoder_blocks.{j}.", decoder_num_heads)
    x = layer_norm(x, sd["decoder_norm.weight"], sd["decoder_norm.bias"])
    pred = linear(x, sd["decoder_pred.weight"], sd["decoder_pred.bias"])[:, 1:]  # (N, L, p*p*C)

    return reference_loss(imgs, pred, mask, p, norm_pix), pred, mask


def reference_loss(imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, p: int, norm_pix: bool) -> torch.Tensor:
    """The MAE loss: per-patch mean squared error against the (norm-pix) targets, averaged over masked patches."""
    N = imgs.shape[0]
    target = to_patches(imgs, p).reshape(N, -1, p * p * imgs.shape[1])  # (p, q, c) order
    if norm_pix:
        P = target.shape[-1]
        mean = target.sum(dim=-1, keepdim=True) / P
        var = ((target - mean) ** 2).sum(dim=-1, keepdim=True) / (P - 1)  # unbiased
        target = (target - mean) / torch.sqrt(var + NORM_PIX_EPS)
    per_patch = ((pred - target) ** 2).mean(dim=-1)  # (N, L)
    return (per_patch * mask).sum() / mask.sum()
