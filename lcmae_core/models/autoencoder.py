"""The autoencoder without masking of Sec. 4.2, Table 3 and Fig. 7.

Every token is encoded; nothing is masked. Each token predicts the b x b pixel block centred on its own
patch, so that the size of the block controls the receptive field the encoder must have. b is an odd multiple
of the patch size (16, 48, 80, 112 for patch 16); b = patch size is the plain autoencoder, AE(16).

Beyond the image border the block is zero padded. With norm-pix on, each block is normalised over its own
b*b*C values, the padding zeros included (they are part of the target).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import mae_loss, normalize_patches
from .mae import MaskedAutoencoderViT


def check_block_size(block_size: int, patch_size: int) -> int:
    if block_size < patch_size or block_size % patch_size or (block_size // patch_size) % 2 == 0:
        raise ValueError(f"block_size must be an odd multiple of the patch size {patch_size} "
                         f"(e.g. {patch_size}, {3 * patch_size}, {5 * patch_size}); got {block_size}")
    return block_size


def block_targets(imgs: torch.Tensor, patch_size: int, block_size: int) -> torch.Tensor:
    """imgs (N, C, H, W) -> (N, L, b*b*C): the b x b block centred on each patch, flattened as (row, col, c)
    like ``patchify``, zero padded beyond the border."""
    check_block_size(block_size, patch_size)
    N, C, H, W = imgs.shape
    pad = (block_size - patch_size) // 2
    x = F.pad(imgs, (pad, pad, pad, pad))
    cols = F.unfold(x, kernel_size=block_size, stride=patch_size)  # (N, C*b*b, L), ordered (c, row, col)
    L = cols.shape[-1]
    cols = cols.reshape(N, C, block_size, block_size, L)
    return cols.permute(0, 4, 2, 3, 1).reshape(N, L, block_size * block_size * C)


class BlockAutoencoderViT(MaskedAutoencoderViT):
    """AE(b): an MAE encoder and decoder with masking removed and b x b block targets.

    Takes every ``MaskedAutoencoderViT`` argument (by keyword), plus ``block_size`` (b; default: the patch size,
    the plain autoencoder). The prediction head outputs
    b*b*C values per token.
    """

    def __init__(self, *, block_size: int | None = None, **kwargs):
        if block_size is None:  # the plain autoencoder, AE(p), whatever the patch size
            block_size = kwargs.get("patch_size", 16)
        check_block_size(block_size, kwargs.get("patch_size", 16))
        kwargs["pred_dim"] = block_size * block_size * kwargs.get("in_chans", 3)
        super().__init__(**kwargs)
        self.block_size = block_size

    def targets(self, imgs: torch.Tensor) -> torch.Tensor:
        target = block_targets(imgs, self.patch_size, self.block_size)  # (N, L, b*b*C)
        return normalize_patches(target) if self.norm_pix_loss else target

    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float = 0.0, noise: torch.Tensor | None = None):
        """Every token, in image order: latent (N, 1 + L, D), mask of zeros (N, L), identity ids_restore."""
        if mask_ratio:
            raise ValueError(f"the block autoencoder does not mask (mask_ratio={mask_ratio}); "
                             "use mask_ratio=0, or MaskedAutoencoderViT for a masked model")
        x = self.embed(imgs)  # (N, L, D)
        N, L, _ = x.shape
        ids_restore = torch.arange(L, device=imgs.device).expand(N, L)
        mask = torch.zeros(N, L, device=imgs.device, dtype=x.dtype)
        return self.encode_tokens(x), mask, ids_restore

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The block loss over every token (nothing is masked, so every token counts)."""
        return mae_loss(pred, self.targets(imgs), torch.ones_like(mask))

    def center_patches(self, pred: torch.Tensor) -> torch.Tensor:
        """pred (N, L, b*b*C) -> (N, L, p*p*C): the centre p x p of each predicted block, to unpatchify."""
        b, p = self.block_size, self.patch_size
        N, L, _ = pred.shape
        x = pred.reshape(N, L, b, b, -1)
        o = (b - p) // 2
        return x[:, :, o:o + p, o:o + p, :].reshape(N, L, -1)

    def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.0, noise: torch.Tensor | None = None):
        return super().forward(imgs, mask_ratio, noise)

    def compute_losses(self, imgs: torch.Tensor, mask_ratio: float = 0.0,
                       noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return super().compute_losses(imgs, mask_ratio, noise)
