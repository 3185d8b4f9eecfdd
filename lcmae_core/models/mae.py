"""``MaskedAutoencoderViT``: the official MAE (facebookresearch/mae ``models_mae.py``), built on timm.

The contract, which the tests hold it to:

- the same methods (``patchify``, ``unpatchify``, ``random_masking``, ``forward_encoder``,
  ``forward_decoder``, ``forward_loss``) and ``forward(imgs, mask_ratio, noise) -> (loss, pred, mask)``;
- the same ``state_dict`` keys and shapes with the transformer decoder, so official checkpoints load with
  ``strict=True``;
- the same numbers: the same masking from the same noise (``argsort``), the same fixed 2-D sin-cos position
  embeddings, the same initialisation, the same (norm-pix) loss.

Beyond the official model it adds the local decoders of Table 2 (``decoder="gaussian" | "conv"``), a hook for
the decoder's hidden states (LC-MAE's projector reads them) and a ``compute_losses`` method that every model
family shares, so one training loop serves MAE, LC-MAE and the block autoencoder.

Masks: (N, L), **1 = masked (removed), 0 = visible (kept)**.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block

from ..losses import mae_loss, normalize_patches
from ..masking import MASK_RATIO, Masking, check_mask_ratio, masking_from_noise
from ..pos_embed import sincos_2d
from .decoders import DECODERS, ConvDecoder, GaussianDecoder


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x: (N, L, D), ids: (N, K) -> (N, K, D), the rows ``x[n, ids[n]]``."""
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class MaskedAutoencoderViT(nn.Module):
    """Masked autoencoder with a ViT encoder; the official MAE with the transformer decoder."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mlp_ratio: float = 4.0,
        norm_pix_loss: bool = False,
        decoder: str = "transformer",
        *,
        norm_eps: float = 1e-6,
        decoder_kernel_size: int = 5,
        gaussian_sigma: float = 1.0,
        pred_dim: int | None = None,
    ):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not divisible by patch_size {patch_size}; "
                             f"use an image size that is a multiple of {patch_size}")
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.decoder_type = decoder
        self.norm_pix_loss = norm_pix_loss
        self.in_chans = in_chans

        # --- encoder -------------------------------------------------------------------------------------
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)  # fixed
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer) for _ in range(depth)
        ])
        self.norm = norm_layer(embed_dim)

        # --- decoder -------------------------------------------------------------------------------------
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)  # fixed
        grid = tuple(self.patch_embed.grid_size)
        if decoder == "transformer":
            self.decoder_blocks = nn.ModuleList([
                Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
                for _ in range(decoder_depth)
            ])
        elif decoder == "gaussian":
            self.decoder_local = GaussianDecoder(decoder_embed_dim, grid, mlp_ratio, decoder_kernel_size,
                                                 gaussian_sigma, norm_layer)
        else:
            self.decoder_local = ConvDecoder(decoder_embed_dim, grid, decoder_kernel_size)
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, pred_dim or patch_size**2 * in_chans, bias=True)

        self.initialize_weights()

    # ---------------------------------------------------------------------------------------------------
    # initialisation, as the official model does it
    def initialize_weights(self) -> None:
        g = self.patch_embed.grid_size
        if g[0] != g[1]:
            raise ValueError(f"the sin-cos position embedding needs a square grid, got {tuple(g)}")
        self.pos_embed.data.copy_(sincos_2d(self.pos_embed.shape[-1], g[0], cls_token=True).unsqueeze(0))
        self.decoder_pos_embed.data.copy_(
            sincos_2d(self.decoder_pos_embed.shape[-1], g[0], cls_token=True).unsqueeze(0))
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))  # like nn.Linear, not nn.Conv2d
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    # ---------------------------------------------------------------------------------------------------
    @property
    def patch_size(self) -> int:
        return self.patch_embed.patch_size[0]

    @property
    def grid_size(self) -> tuple[int, int]:
        return tuple(self.patch_embed.grid_size)

    @property
    def num_patches(self) -> int:
        return self.patch_embed.num_patches

    def no_weight_decay(self) -> set[str]:
        """Parameters that take no weight decay, beyond norms and biases (timm's convention)."""
        return {"cls_token", "mask_token", "pos_embed", "decoder_pos_embed"}

    def check_images(self, imgs: torch.Tensor) -> None:
        if imgs.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(imgs.shape)}")
        N, C, H, W = imgs.shape
        img = self.patch_embed.img_size
        if C != self.in_chans or (H, W) != tuple(img):
            raise ValueError(f"images of shape {tuple(imgs.shape)} do not fit this model, which takes "
                             f"(N, {self.in_chans}, {img[0]}, {img[1]}); resize or rebuild the model")

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: (N, C, H, W) -> x: (N, L, p*p*C), each patch flattened as (p, q, c)."""
        p = self.patch_size
        N, C, H, W = imgs.shape
        if H % p or W % p:
            raise ValueError(f"image size {H}x{W} is not divisible by the patch size {p}")
        h, w = H // p, W // p
        x = imgs.reshape(N, C, h, p, w, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(N, h * w, p * p * C)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, L, p*p*C) -> imgs: (N, C, H, W), on this model's grid."""
        p = self.patch_size
        h, w = self.grid_size
        C = x.shape[-1] // (p * p)
        x = x.reshape(x.shape[0], h, w, p, p, C)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], C, h * p, w * p)

    def targets(self, imgs: torch.Tensor) -> torch.Tensor:
        """The reconstruction targets, (N, L, P): the patches, normalised per patch when norm_pix_loss is on."""
        target = self.patchify(imgs)
        return normalize_patches(target) if self.norm_pix_loss else target

    # ---------------------------------------------------------------------------------------------------
    # encoder
    def embed(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: (N, C, H, W) -> (N, L, D) patch tokens with position embeddings, no CLS."""
        self.check_images(imgs)
        return self.patch_embed(imgs) + self.pos_embed[:, 1:, :]

    def random_masking(self, x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
        """x: (N, L, D) -> (x_masked (N, len_keep, D), mask (N, L), ids_restore (N, L)), as the official code.

        noise (N, L): the len_keep positions with the smallest noise stay visible; drawn with torch.rand when
        None.
        """
        m = self.masking(x.shape[0], mask_ratio, noise, x.device)
        return gather_tokens(x, m.ids_keep), m.mask, m.ids_restore

    def masking(self, batch: int, mask_ratio: float, noise: torch.Tensor | None, device) -> Masking:
        L = self.num_patches
        check_mask_ratio(mask_ratio)
        if noise is None:
            noise = torch.rand(batch, L, device=device)  # noise in [0, 1)
        elif tuple(noise.shape) != (batch, L):
            raise ValueError(f"noise must have shape (N, L) = ({batch}, {L}), got {tuple(noise.shape)}")
        return masking_from_noise(noise.to(device), mask_ratio)

    def encode_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, K, D) visible tokens (position embeddings added) -> latent (N, 1 + K, D), CLS first."""
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
        """imgs: (N, C, H, W) -> latent (N, 1 + len_keep, D), mask (N, L), ids_restore (N, L)."""
        x = self.embed(imgs)  # (N, L, D)
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)  # (N, len_keep, D)
        return self.encode_tokens(x), mask, ids_restore

    # ---------------------------------------------------------------------------------------------------
    # decoder
    def decoder_tokens(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent (N, 1 + K, D) -> (N, 1 + L, Dd): CLS, then every position in image order, mask tokens where
        masked, position embeddings added."""
        x = self.decoder_embed(latent)  # (N, 1 + K, Dd)
        N, K1, Dd = x.shape
        L = ids_restore.shape[1]
        mask_tokens = self.mask_token.expand(N, L + 1 - K1, Dd)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # (N, L, Dd): [visible..., masked...]
        x_ = gather_tokens(x_, ids_restore)  # unshuffle to image order
        x = torch.cat([x[:, :1, :], x_], dim=1)  # (N, 1 + L, Dd)
        return x + self.decoder_pos_embed

    def forward_decoder_hidden(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """The decoder's final hidden states, after ``decoder_norm`` and before ``decoder_pred``: (N, L, Dd),
        patch tokens only (CLS dropped)."""
        x = self.decoder_tokens(latent, ids_restore)
        if self.decoder_type == "transformer":
            for blk in self.decoder_blocks:
                x = blk(x)
            return self.decoder_norm(x)[:, 1:, :]
        return self.decoder_norm(self.decoder_local(x[:, 1:, :]))

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent (N, 1 + K, D) -> pred (N, L, p*p*C)."""
        return self.decoder_pred(self.forward_decoder_hidden(latent, ids_restore))

    # ---------------------------------------------------------------------------------------------------
    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 1 as the official code computes it: per-patch mean squared error, averaged over masked patches."""
        return mae_loss(pred, self.targets(imgs), mask)

    def compute_losses(self, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO,
                       noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The training objective and its parts: {"loss", "loss_mae", "pred", "mask"}. Shared by every family."""
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        loss = self.forward_loss(imgs, pred, mask)
        return {"loss": loss, "loss_mae": loss.detach(), "pred": pred, "mask": mask}

    def forward(self, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO, noise: torch.Tensor | None = None):
        """imgs (N, C, H, W) -> (loss, pred (N, L, p*p*C), mask (N, L), 1 = masked)."""
        out = self.compute_losses(imgs, mask_ratio, noise)
        return out["loss"], out["pred"], out["mask"]
