"""The features of decoder layers that Eq. 8 compares (the outputs of every decoder layer on masked images), and
the keys of one block's attention (``KeyRecorder``)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..masking import mask_ratio_of, noise_for_mask
from .attention import check_attention_block
from .geometry import expand_mask


class KeyRecorder:
    """Context manager that keeps the keys of one block's attention (what CutLER's MaskCut uses as features).

    After a forward, ``keys`` is (B, N, H * d): the k part of ``attn.qkv``'s output, heads concatenated, before
    ``k_norm``."""

    def __init__(self, block: nn.Module):
        self.attn = check_attention_block(block)
        self.keys: torch.Tensor | None = None
        self._handle = None

    def _hook(self, module: nn.Module, args: tuple, qkv: torch.Tensor) -> None:
        D = qkv.shape[-1] // 3  # qkv: (B, N, 3 * H * d), ordered (q | k | v)
        self.keys = qkv[..., D:2 * D].detach()
        return None

    def __enter__(self) -> "KeyRecorder":
        self._handle = self.attn.qkv.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The decoder's layers whose outputs Eq. 8 compares: the transformer blocks, or the one local decoder."""
    if getattr(model, "decoder_blocks", None) is not None:
        return list(model.decoder_blocks)
    if getattr(model, "decoder_local", None) is not None:
        return [model.decoder_local]
    raise ValueError(f"{type(model).__name__} has no decoder; pass a MaskedAutoencoderViT-family model")


@torch.no_grad()
def decoder_layer_features(model: nn.Module, imgs: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of every decoder layer on masked images: one (B, L, Dd) per layer, patch tokens in image order.

    mask: (L,) or (B, L), 1 = masked. The CLS token of the transformer decoder is dropped."""
    layers = decoder_layers(model)
    B, L = imgs.shape[0], model.num_patches
    m = expand_mask(mask, B, L).to(imgs.device)
    outs: list[torch.Tensor | None] = [None] * len(layers)

    def keep(i):
        def hook(module, args, out):
            outs[i] = out[:, -L:, :].detach()  # (B, L, Dd): drop the CLS token when present
        return hook

    handles = [layer.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    try:
        latent, _, ids_restore = model.forward_encoder(imgs, mask_ratio_of(m), noise_for_mask(m))
        model.forward_decoder(latent, ids_restore)
    finally:
        for h in handles:
            h.remove()
    return outs
