"""The autoencoder without masking of Sec. 4.2, Table 3 and Fig. 7.

Every token is encoded; nothing is masked. Each token predicts the b x b pixel block centred on its own
patch, so that the size of the block controls the receptive field the encoder must have. b is an odd multiple
of the patch size (16, 48, 80, 112 for patch 16); b = patch size is the plain autoencoder, AE(16).

Near the border part of the block lies beyond the image; the paper does not say what it holds there. The
reading here: the target of a token is the part of its b x b block that lies inside the image, and positions
beyond the border are not part of the target. They are excluded from the loss and, with norm-pix on, from the
per-block mean and (unbiased) variance; the per-token loss is the mean squared error over the token's valid
values only (a corner token's loss is an average over its in-image pixels, like every other token's), and the
token losses are averaged as before. So the target adds nothing beyond the image: zero padding of the
normalised image would have added the dataset's mean colour (on MNIST, a grey frame of intensity 0.13 around
a background of 0), and norm-pix would have normalised each border block with it. ``block_validity`` gives
the (L, b*b*C) mask of valid positions; ``block_targets`` still returns full blocks, with 0 as a placeholder
beyond the border. For b = p no position is invalid and the loss is the unmasked MAE loss exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import mae_loss_masked, normalize_patches_masked
from .mae import MaskedAutoencoderViT


def check_block_size(block_size: int, patch_size: int) -> int:
    if block_size < patch_size or block_size % patch_size or (block_size // patch_size) % 2 == 0:
        raise ValueError(f"block_size must be an odd multiple of the patch size {patch_size} "
                         f"(e.g. {patch_size}, {3 * patch_size}, {5 * patch_size}); got {block_size}")
    return block_size


def block_coverage(block_size: int, img_size: int) -> float:
    """The fraction of the image width a b x b block spans, b / img_size (not clipped: above 1 when the block
    is wider than the image). The paper's blocks for ViT-B/16 at 224 px, 16/48/80/112 px, span 7/21/36/50%."""
    if block_size <= 0 or img_size <= 0:
        raise ValueError(f"block_size and img_size must be positive; got {block_size} and {img_size}")
    return block_size / img_size


def block_validity(img_size: int | tuple[int, int], patch_size: int, block_size: int,
                   in_chans: int = 3, device=None) -> torch.Tensor:
    """(L, b*b*C) bool, laid out like ``block_targets``: True where the block of a token lies inside the image
    (part of the target), False beyond the border. img_size: H, or (H, W)."""
    check_block_size(block_size, patch_size)
    H, W = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if H % patch_size or W % patch_size:
        raise ValueError(f"image size {H}x{W} is not divisible by the patch size {patch_size}")
    pad = (block_size - patch_size) // 2
    offs = torch.arange(block_size, device=device) - pad  # block offsets from the patch's top-left pixel
    rows = torch.arange(0, H, patch_size, device=device)[:, None] + offs  # (h, b) image rows of each block
    cols = torch.arange(0, W, patch_size, device=device)[:, None] + offs  # (w, b)
    row_ok, col_ok = (rows >= 0) & (rows < H), (cols >= 0) & (cols < W)
    ok = row_ok[:, None, :, None] & col_ok[None, :, None, :]  # (h, w, b, b)
    L = ok.shape[0] * ok.shape[1]
    return ok.reshape(L, block_size, block_size, 1).expand(-1, -1, -1, in_chans).reshape(L, -1)


def block_targets(imgs: torch.Tensor, patch_size: int, block_size: int) -> torch.Tensor:
    """imgs (N, C, H, W) -> (N, L, b*b*C): the b x b block centred on each patch, flattened as (row, col, c)
    like ``patchify``. Beyond the border the values are 0 placeholders, not part of the target: mask them with
    ``block_validity``."""
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
        # (L, b*b*C) bool, True inside the image; None for b = p (every position valid: the plain MAE loss).
        # Not persistent: derived from the geometry, so it stays out of the state dict and checkpoints.
        valid = None if block_size == self.patch_size else block_validity(
            tuple(self.patch_embed.img_size), self.patch_size, block_size, self.in_chans)
        self.register_buffer("block_valid", valid, persistent=False)

    def targets(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, L, b*b*C): each token's block, normalised over its in-image values when norm_pix_loss is on; 0
        beyond the border (not part of the target, see ``block_valid``)."""
        target = block_targets(imgs, self.patch_size, self.block_size)  # (N, L, b*b*C)
        return normalize_patches_masked(target, self.block_valid) if self.norm_pix_loss else target

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
        """The block loss over every token (nothing is masked, so every token counts): each token's mean squared
        error over the in-image part of its block, averaged over tokens."""
        return mae_loss_masked(pred, self.targets(imgs), torch.ones_like(mask), self.block_valid)

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
