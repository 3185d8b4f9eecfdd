"""Eq. 7 (S^attn, Fig. 2) and Eq. 8 (S^sim, Fig. 3): how positional and how semantic each decoder layer is.

**Eq. 7.** Every image is masked with the *identical* mask. For decoder layer l and image i, A_{l,i} (k, h, n) holds
the attention maps of the k mask-token queries, h heads, over n keys. S^attn_l is the mean cosine similarity of the
flattened maps over ordered pairs i != j of images. With u_i = A_{l,i} / ||A_{l,i}|| flattened and s = sum_i u_i,
``sum_{i != j} cos(A_i, A_j) = |s|^2 - I``, so a stream over any number of images keeps one (k*h*n,) vector per
layer and never an I x I matrix.

Reading: the paper's n is "the number of patches", so the CLS key column is dropped by default
(``cls_key=False``); the maps are not renormalised after dropping it.

**S^c, flatness-free** (``centered=True``): the same mean cosine on the maps minus uniform attention, A - 1/n. Eq. 7
is 1 for uniform attention (every image's map is the same flat one), so a layer that attends to nothing in
particular is "most alike"; S^c of a uniform layer is 0 (a zero map counts as alike to nothing), and S^c is high
only where the maps share a pattern. With zero maps allowed, the stream keeps sum_i |u_i|^2 beside s:
``sum_{i != j} cos = |s|^2 - sum_i |u_i|^2``.

**Eq. 8.** For each image the patch features F (n, D) of a layer give the affinity W = F F^T of L2-normalised rows
(cosine similarities, n x n). Following CutLER's MaskCut, ``tau`` optionally binarises it (W >= tau -> 1, else
``eps`` = 1e-5; CutLER uses tau = 0.2). S^sim_l = mean over images of cos(W^ref, W^dec_l), the matrices flattened.

Reference model. The paper's reference is the final layer of DINO ViT-B/16 (``vit_base_patch16_224.dino``) at paper
scale, with DeiT-B as an alternative. At cpu/gpu scale there is no DINO of the right grid, so the reference is a
model trained here: the supervised/finetuned ViT or this project's MAE encoder (``final_patch_features``). The
caller chooses: ``reference`` is any model or callable ``imgs -> (B, n, D)``; its grid must equal the decoder's.
Decoder layer features are the outputs of the decoder blocks (the residual stream, before ``decoder_norm``), patch
tokens only, with the images masked (a mask shared by all images, as for Eq. 7, by default); the reference sees the
unmasked image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._batches import iter_image_batches
from .attention import decoder_attention, masked_query_rows
from .distance import stat_sums
from .features import KeyRecorder, decoder_layer_features
from .geometry import (decoder_blocks, encoder_blocks, grid_size_of, is_mae, num_prefix_tokens, patch_size_of,
                       shared_mask)
from ..masking import MASK_RATIO, noise_for_mask


# ---------------------------------------------------------------------------------------------------------------
# Eq. 7
def _flat_unit(maps: torch.Tensor, centered: bool = False) -> torch.Tensor:
    """maps (I, k, h, n) -> (I, k*h*n), each row L2-normalised (a zero row stays zero), in float64; centered:
    uniform attention 1/n subtracted first (S^c)."""
    if maps.dim() != 4:
        raise ValueError(f"maps must be (I, k, h, n) = (images, mask-token queries, heads, keys); got "
                         f"{tuple(maps.shape)}")
    flat = maps.double()
    if centered:
        n = maps.shape[-1]
        flat = flat - 1.0 / n
        # a uniform map stored in float32 is 1/n rounded: its residue is rounding, not a pattern, and must stay 0
        resolution = 8 * torch.finfo(maps.dtype).eps / n if maps.dtype.is_floating_point else 0.0
        flat = torch.where(flat.abs() <= resolution, torch.zeros_like(flat), flat)
    return F.normalize(flat.reshape(maps.shape[0], -1), dim=1)


def attention_map_similarity(maps: torch.Tensor, centered: bool = False) -> torch.Tensor:
    """Eq. 7: S^attn = sum_{i != j} cos(A_i, A_j) / (I (I - 1)). maps: (I, k, h, n) -> scalar (float64); centered:
    S^c, the same on A - 1/n.

    Computed from the I x I Gram matrix; for many images use ``AttentionSimilarityMeter``."""
    u = _flat_unit(maps, centered)  # (I, k*h*n)
    I = u.shape[0]
    if I < 2:
        raise ValueError("Eq. 7 needs at least 2 images")
    gram = u @ u.T  # (I, I)
    return (gram.sum() - gram.diagonal().sum()) / (I * (I - 1))


class AttentionSimilarityMeter:
    """Streaming Eq. 7 for several layers: keeps s_l = sum_i u_{l,i} (k*h*n,) per layer, q_l = sum_i |u_{l,i}|^2
    (I for unit rows; less where a centred map is zero) and the image count I.

    update(l, maps (B, k, h, n)); value() -> (layers,) with S_l = (|s_l|^2 - q_l) / (I (I - 1)). centered: S^c.
    """

    def __init__(self, num_layers: int = 1, centered: bool = False):
        self.centered = centered
        self.sums: list[torch.Tensor | None] = [None] * num_layers
        self.norms = [0.0] * num_layers
        self.counts = [0] * num_layers

    def update(self, layer: int, maps: torch.Tensor) -> None:
        u = _flat_unit(maps, self.centered)  # (B, k*h*n)
        s = u.sum(0)
        if self.sums[layer] is not None and self.sums[layer].shape != s.shape:
            raise ValueError(f"maps of shape {tuple(maps.shape[1:])} do not match the earlier ones; every image "
                             "needs the identical mask (same k) for Eq. 7")
        self.sums[layer] = s if self.sums[layer] is None else self.sums[layer] + s
        self.norms[layer] += float((u * u).sum())
        self.counts[layer] += u.shape[0]

    def value(self) -> torch.Tensor:
        out = []
        for s, q, I in zip(self.sums, self.norms, self.counts):
            if I < 2:
                raise ValueError("Eq. 7 needs at least 2 images per layer")
            out.append((s.dot(s) - q) / (I * (I - 1)))
        return torch.stack(out)


@torch.no_grad()
def attention_similarity_curve(model: nn.Module, images, mask: torch.Tensor | None = None,
                               mask_ratio: float = MASK_RATIO, batch_size: int = 64, device=None,
                               limit: int | None = None, seed: int = 0, cls_key: bool = False,
                               centered: bool = False) -> torch.Tensor:
    """Fig. 2: S^attn (Eq. 7) of every decoder layer over a stream of images -> (layers,) float64 (centered: S^c).

    mask: (L,) shared by all images (1 = masked); None draws one with ``seed`` at ``mask_ratio``. Every image gets
    the identical mask. images: a tensor (N, C, H, W) or an iterable of batches. Memory: one (k*h*n,) sum per layer.
    """
    model.eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    L = model.num_patches
    if mask is None:
        mask = shared_mask(L, mask_ratio, seed)
    mask = torch.as_tensor(mask)
    if mask.dim() == 2 and mask.shape[0] > 1 and not bool((mask == mask[:1]).all()):
        raise ValueError("Eq. 7 needs the identical mask for every image; pass one mask of shape (L,)")
    mask = mask.reshape(-1, L)[0].to(dev)  # (L,)
    meter = AttentionSimilarityMeter(len(decoder_blocks(model)), centered)
    start = 0 if cls_key else 1

    def reduce(i: int, a: torch.Tensor) -> None:  # a: (B, H, 1 + L, 1 + L)
        rows = masked_query_rows(a, mask, 1)[..., start:]  # (B, H, k, n)
        meter.update(i, rows.transpose(1, 2))  # (B, k, H, n)

    for imgs in iter_image_batches(images, batch_size, dev, limit):
        decoder_attention(model, imgs, mask, reduce=reduce)
    return meter.value()


@torch.no_grad()
def decoder_attention_measures(model: nn.Module, images, mask: torch.Tensor, batch_size: int = 64, device=None,
                               limit: int | None = None) -> dict[str, torch.Tensor]:
    """Eq. 7 and the mask tokens' attention distance and entropy of every decoder layer from one pass over the
    images, every image with the identical mask (L,): {"s_attn": (layers,) float64, "s_attn_centered": S^c
    (layers,) float64, "distance": (layers, heads) pixels, "entropy": (layers, heads) fraction of the maximum}. The
    same numbers as ``attention_similarity_curve`` and ``attention_stats_curves(..., queries="masked")``, at a
    third of the cost."""
    model.eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    L = model.num_patches
    mask = torch.as_tensor(mask).reshape(-1)[:L].to(dev)
    meter = AttentionSimilarityMeter(len(decoder_blocks(model)))
    centered = AttentionSimilarityMeter(len(decoder_blocks(model)), centered=True)
    p, grid = patch_size_of(model), grid_size_of(model)
    sums, count = None, 0.0
    for imgs in iter_image_batches(images, batch_size, dev, limit):
        if imgs.shape[0] == 0:
            continue
        qmask = mask.expand(imgs.shape[0], L)

        def reduce(i: int, a: torch.Tensor):  # a: (B, H, 1 + L, 1 + L)
            rows = masked_query_rows(a, mask, 1)[..., 1:].transpose(1, 2)  # (B, k, H, n)
            meter.update(i, rows)
            centered.update(i, rows)
            return stat_sums("both", a, p, 1, grid, None, qmask)

        res = decoder_attention(model, imgs, mask, reduce=reduce)
        layer_sums = torch.stack([s for s, _ in res.maps])  # (layers, 2, H)
        sums = layer_sums if sums is None else sums + layer_sums
        count += res.maps[0][1]
    if sums is None:
        raise ValueError("no images: the image source was empty")
    out = (sums / count).float()
    return {"s_attn": meter.value(), "s_attn_centered": centered.value(), "distance": out[:, 0],
            "entropy": out[:, 1]}


@torch.no_grad()
def query_similarity_curves(model: nn.Module, images, mask: torch.Tensor, positions, batch_size: int = 64,
                            device=None, limit: int | None = None, cls_key: bool = False,
                            centered: bool = False) -> torch.Tensor:
    """Eq. 7 for single mask-token queries (Fig. 4): how alike one query's decoder attention is across images.

    mask: (L,) shared by every image (1 = masked); positions: P masked grid positions. For each position and
    decoder layer, S = mean over ordered image pairs i != j of cos(a_i, a_j), a_i (h, n) that query's attention
    of image i (heads kept, CLS key dropped unless ``cls_key``): Eq. 7 with k = 1. -> (P, layers) float64.
    centered: S^c, the same on the maps minus uniform attention.
    """
    model.eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    mask = torch.as_tensor(mask).reshape(-1).to(dev)  # (L,)
    pos = torch.as_tensor(positions, dtype=torch.long).reshape(-1).to(dev)  # (P,)
    if not bool((mask[pos] == 1).all()):
        raise ValueError(f"positions {pos.tolist()} must all be masked (mask == 1) to be mask-token queries")
    nl = len(decoder_blocks(model))
    meters = [AttentionSimilarityMeter(nl, centered) for _ in range(pos.numel())]
    start = 0 if cls_key else 1

    def reduce(i: int, a: torch.Tensor) -> None:  # a: (B, H, 1 + L, 1 + L)
        rows = a[:, :, pos + 1, start:]  # (B, H, P, n)
        for j, meter in enumerate(meters):
            meter.update(i, rows[:, :, j:j + 1].transpose(1, 2))  # (B, 1, H, n)

    for imgs in iter_image_batches(images, batch_size, dev, limit):
        decoder_attention(model, imgs, mask, reduce=reduce)
    return torch.stack([m.value() for m in meters])  # (P, layers)


# ---------------------------------------------------------------------------------------------------------------
# Eq. 8
def feature_affinity(feats: torch.Tensor, tau: float | None = None, eps: float = 1e-5) -> torch.Tensor:
    """The similarity weight W of Eq. 8: feats (B, n, D) -> (B, n, n) cosine similarities of the patch features.

    tau: if given, binarise as CutLER's MaskCut does: W >= tau -> 1, otherwise ``eps`` (paper setting tau = 0.2)."""
    if feats.dim() != 3:
        raise ValueError(f"feats must be (B, n, D), got {tuple(feats.shape)}")
    f = F.normalize(feats.float(), dim=-1)  # (B, n, D)
    w = f @ f.transpose(1, 2)  # (B, n, n)
    if tau is not None:
        w = torch.where(w >= tau, torch.ones_like(w), torch.full_like(w, eps))
    return w


def affinity_similarity(w_ref: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """cos(W^ref_i, W_i) per image, the matrices flattened: (B, n, n) x (B, n, n) -> (B,)."""
    if w_ref.shape != w.shape:
        raise ValueError(f"affinities differ in shape: reference {tuple(w_ref.shape)} vs {tuple(w.shape)}; the "
                         "reference model must have the same patch grid as the decoder")
    return F.cosine_similarity(w_ref.flatten(1).double(), w.flatten(1).double(), dim=1)


@torch.no_grad()
def final_patch_features(model: nn.Module, imgs: torch.Tensor, kind: str = "tokens") -> torch.Tensor:
    """A reference model's final-layer patch features, (B, n, D), on unmasked images (Eq. 8's W^ref).

    model: a timm ``VisionTransformer`` (DINO ViT-B/16 at paper scale, DeiT-B, a finetuned ViT at small scale) or
    an MAE-family model (its encoder at mask ratio 0). kind="tokens": the output tokens after the final norm, prefix
    dropped; kind="keys": the keys of the last attention block (what CutLER's MaskCut uses), heads concatenated.
    """
    if kind not in ("tokens", "keys"):
        raise ValueError(f"kind must be 'tokens' or 'keys', got {kind!r}")
    prefix = num_prefix_tokens(model)
    if kind == "keys":
        with KeyRecorder(encoder_blocks(model)[-1]) as rec:
            final_patch_features(model, imgs, "tokens")
        return rec.keys[:, prefix:, :]  # (B, n, H * d)
    if is_mae(model):
        L = model.num_patches
        z = torch.zeros(imgs.shape[0], L, device=imgs.device)
        latent, _, _ = model.forward_encoder(imgs, 0.0, noise_for_mask(z))  # every token, image order
        return latent[:, 1:, :]
    return model.forward_features(imgs)[:, prefix:, :]


FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def as_feature_fn(reference: nn.Module | FeatureFn, kind: str = "tokens") -> FeatureFn:
    """A model -> ``imgs -> final_patch_features(model, imgs, kind)``; a callable is returned as it is."""
    if isinstance(reference, nn.Module):
        reference.eval()
        return lambda imgs: final_patch_features(reference, imgs, kind)
    if callable(reference):
        return reference
    raise ValueError("reference must be a model or a callable imgs (B, C, H, W) -> patch features (B, n, D)")


@torch.no_grad()
def semantic_similarity_curve(model: nn.Module, reference: nn.Module | FeatureFn, images,
                              mask: torch.Tensor | None = None, mask_ratio: float = MASK_RATIO,
                              tau: float | None = None, batch_size: int = 64, device=None, limit: int | None = None,
                              seed: int = 0, reference_kind: str = "tokens",
                              reference_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                              ) -> torch.Tensor:
    """Fig. 3: S^sim (Eq. 8) of every decoder layer against a reference model's final layer -> (layers,) float64.

    reference: DINO ViT-B/16 at paper scale; at cpu/gpu scale a model trained here (a finetuned ViT or the MAE
    encoder), or any callable imgs -> (B, n, D). Its patch grid must equal the decoder's (n = L).
    mask: (L,) shared by every image (default: one drawn with ``seed`` at ``mask_ratio``, as for Eq. 7).
    tau: None for the raw cosine affinity, 0.2 for CutLER's binarised one. reference_transform: applied to the
    images before the reference (e.g. a different normalisation). Streams: keeps one sum per layer.
    """
    return semantic_similarity_curves(model, {"ref": reference}, images, mask, mask_ratio, tau, batch_size, device,
                                      limit, seed, reference_kind, reference_transform)["ref"]


@torch.no_grad()
def semantic_similarity_curves(model: nn.Module, references: dict, images, mask: torch.Tensor | None = None,
                               mask_ratio: float = MASK_RATIO, tau: float | None = None, batch_size: int = 64,
                               device=None, limit: int | None = None, seed: int = 0, reference_kind: str = "tokens",
                               reference_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                               ) -> dict[str, torch.Tensor]:
    """``semantic_similarity_curve`` against several references at once ({name: model or callable}): the decoder
    runs once per batch for all of them -> {name: (layers,) float64}."""
    model.eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    refs = {k: as_feature_fn(r, reference_kind) for k, r in references.items()}
    L = model.num_patches
    if mask is None:
        mask = shared_mask(L, mask_ratio, seed)
    mask = torch.as_tensor(mask).to(dev)
    sums = {k: None for k in refs}
    count = 0
    for imgs in iter_image_batches(images, batch_size, dev, limit):
        feats = decoder_layer_features(model, imgs, mask)  # layers x (B, L, Dd)
        w_dec = [feature_affinity(f, tau) for f in feats]
        ref_imgs = reference_transform(imgs) if reference_transform is not None else imgs
        for k, ref in refs.items():
            f_ref = ref(ref_imgs)  # (B, n, D)
            if f_ref.shape[1] != L:
                raise ValueError(f"the reference gives {f_ref.shape[1]} patch features but the decoder has {L} "
                                 "positions; use a reference with the same patch grid")
            w_ref = feature_affinity(f_ref, tau)  # (B, L, L)
            s = torch.stack([affinity_similarity(w_ref, w).sum() for w in w_dec])  # (layers,)
            sums[k] = s if sums[k] is None else sums[k] + s
        count += imgs.shape[0]
    if count == 0:
        raise ValueError("no images: the image source was empty")
    return {k: v / count for k, v in sums.items()}


__all__ = ["attention_map_similarity", "AttentionSimilarityMeter", "attention_similarity_curve",
           "query_similarity_curves", "feature_affinity",
           "affinity_similarity", "decoder_layer_features", "final_patch_features",
           "semantic_similarity_curve", "semantic_similarity_curves", "as_feature_fn", "decoder_attention_measures"]
