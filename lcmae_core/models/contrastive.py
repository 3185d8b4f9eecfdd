"""``ContrastiveViT``: a global contrastive model (SimCLR-style) on the MAE encoder, the ``simclr`` family.

Fig. 5 of the paper compares the encoder attention of MAE with that of a contrastive model and of a supervised one.
This is the contrastive model at the book's small scales: SimCLR's NT-Xent (``losses.nt_xent``) between the CLS
tokens of two augmented views of each image.

- **Encoder**: ``MaskedAutoencoderViT``'s, unchanged (``patch_embed``, ``cls_token``, the fixed sin-cos ``pos_embed``,
  ``blocks``, ``norm``), with the same state-dict keys, so that finetuning and linear probing load it as they load an
  MAE's, and the attention analysis reads ``model.blocks``. It encodes every token (no masking).
- **No decoder**: the parent is built with the smallest decoder, whose modules are then set to None (they leave the
  state dict and the optimizer). ``decoder_embed`` stays as an attribute (None) so that the analysis code, which
  tells this project's models from timm's by it (``analysis.geometry.is_mae``), treats it as an MAE-family encoder
  with one CLS prefix token.
- **Projector**: Linear(D, D) - BatchNorm1d(D) - ReLU - Linear(D, proj_dim) on the CLS token after the final norm
  (SimCLR's two-layer head, hidden width = the feature width); ``temperature`` 0.2 by default.
- **Views**: the data pipeline gives one augmented crop per image; ``make_views`` makes the two views of it with
  tensor ops, per sample: a random resized crop of area (0.2, 1) and aspect ratio (3/4, 4/3)
  (``affine_grid`` + bilinear ``grid_sample``), a horizontal flip with p 0.5, a per-channel random gain in
  [0.6, 1.4] and bias in [-0.4, 0.4] (a colour-jitter stand-in on normalised tensors) and greyscale (the channel
  mean) with p 0.2. Every random number of both views comes from one uniform ``noise`` tensor (2, N,
  ``view_noise_dim``), as MAE's masks come from its noise: drawn from the global RNG (which the trainer seeds) when
  not given, or with a ``torch.Generator`` through ``view_noise``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses import nt_xent
from .mae import MaskedAutoencoderViT

# the views' augmentation (see the module docstring)
VIEW_CROP_SCALE = (0.2, 1.0)
VIEW_CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
VIEW_HFLIP = 0.5
VIEW_GAIN = 0.4  # gain uniform in [1 - 0.4, 1 + 0.4], per sample and channel
VIEW_BIAS = 0.4  # bias uniform in [-0.4, 0.4] (units of the normalised data), per sample and channel
VIEW_GREY = 0.2
TEMPERATURE = 0.2

# MaskedAutoencoderViT arguments that shape only the decoder or the reconstruction loss: accepted (a size of
# ``models.SIZES`` names them) and ignored
DECODER_ARGS = ("decoder_embed_dim", "decoder_depth", "decoder_num_heads", "norm_pix_loss", "decoder",
                "decoder_kernel_size", "gaussian_sigma", "pred_dim")


def view_noise_dim(in_chans: int) -> int:
    """Uniform numbers per view and image: crop area, aspect ratio, centre x, centre y, flip, greyscale, then one
    gain and one bias per channel."""
    return 6 + 2 * in_chans


def augment(imgs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One view: imgs (N, C, H, W), normalised; u (N, ``view_noise_dim(C)``) uniform in [0, 1) -> (N, C, H, W).

    Random resized crop (area ``VIEW_CROP_SCALE`` of the image, aspect ratio ``VIEW_CROP_RATIO``, log-uniform; a side
    longer than the image is clipped to it) resampled bilinearly to the input size, horizontal flip, per-channel
    gain and bias, greyscale."""
    N, C, H, W = imgs.shape
    if tuple(u.shape) != (N, view_noise_dim(C)):
        raise ValueError(f"view noise must have shape (N, {view_noise_dim(C)}) = ({N}, {view_noise_dim(C)}), "
                         f"got {tuple(u.shape)}")
    u = u.to(device=imgs.device, dtype=torch.float32)
    lo, hi = VIEW_CROP_SCALE
    area = lo + (hi - lo) * u[:, 0]
    log_lo, log_hi = math.log(VIEW_CROP_RATIO[0]), math.log(VIEW_CROP_RATIO[1])
    ratio = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1])  # width / height
    sw = torch.sqrt(area * ratio).clamp(max=1.0)  # the crop's width, as a fraction of the image's
    sh = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (2 * u[:, 2] - 1) * (1 - sw)  # the crop's centre in [-1, 1] coordinates, the crop inside the image
    cy = (2 * u[:, 3] - 1) * (1 - sh)
    flip = torch.where(u[:, 4] < VIEW_HFLIP, -1.0, 1.0)
    zero = torch.zeros_like(sw)
    theta = torch.stack([torch.stack([sw * flip, zero, cx], 1), torch.stack([zero, sh, cy], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(imgs.dtype), [N, C, H, W], align_corners=False)
    x = F.grid_sample(imgs, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gain = 1 + VIEW_GAIN * (2 * u[:, 6:6 + C] - 1)  # (N, C)
    bias = VIEW_BIAS * (2 * u[:, 6 + C:6 + 2 * C] - 1)
    x = x * gain[:, :, None, None].to(x.dtype) + bias[:, :, None, None].to(x.dtype)
    grey = (u[:, 5] < VIEW_GREY)[:, None, None, None]
    return torch.where(grey, x.mean(1, keepdim=True).expand_as(x), x)


class ContrastiveViT(MaskedAutoencoderViT):
    """SimCLR on the MAE encoder. Takes the encoder arguments of ``MaskedAutoencoderViT`` (by keyword; its decoder
    arguments are accepted and ignored), plus:

    proj_dim: the projector's output dimension.
    proj_hidden_dim: its hidden width (None: the encoder's width).
    temperature: NT-Xent's temperature (0.2).
    """

    def __init__(self, *, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 1024,
                 depth: int = 24, num_heads: int = 16, mlp_ratio: float = 4.0, norm_eps: float = 1e-6,
                 proj_dim: int = 256, proj_hidden_dim: int | None = None, temperature: float = TEMPERATURE,
                 **decoder_args):
        unknown = sorted(set(decoder_args) - set(DECODER_ARGS))
        if unknown:
            raise TypeError(f"ContrastiveViT got unexpected arguments {', '.join(unknown)}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        # the smallest decoder, removed below: only the encoder (and its initialisation) is kept
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                         depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, norm_eps=norm_eps,
                         decoder_embed_dim=4, decoder_depth=1, decoder_num_heads=1, decoder="transformer")
        for name in ("decoder_embed", "decoder_blocks", "decoder_norm", "decoder_pred", "mask_token",
                     "decoder_pos_embed"):
            setattr(self, name, None)  # out of the state dict and the parameters; the attribute stays (is_mae)
        self.decoder_type = "none"
        self.temperature = float(temperature)
        hidden = proj_hidden_dim or embed_dim
        self.projector = nn.Sequential(nn.Linear(embed_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, proj_dim))
        self.projector.apply(self._init_weights)

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed"}

    # ---------------------------------------------------------------------------------------------------
    # views
    def view_noise(self, batch: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(2, N, ``view_noise_dim``) uniform numbers that fix both views of a batch (from ``generator`` if given,
        else the global RNG)."""
        return torch.rand(2, batch, view_noise_dim(self.in_chans), device=device, generator=generator)

    @torch.no_grad()
    def make_views(self, imgs: torch.Tensor, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """imgs (N, C, H, W) -> the two views as one batch (2N, C, H, W), view 1 in rows [0, N).

        noise: (2, N, ``view_noise_dim``) uniform in [0, 1) (``view_noise``); None: drawn with ``generator``, or the
        global RNG."""
        self.check_images(imgs)
        N = imgs.shape[0]
        if noise is None:
            noise = self.view_noise(N, imgs.device if generator is None else generator.device, generator)
        elif tuple(noise.shape) != (2, N, view_noise_dim(self.in_chans)):
            raise ValueError(f"simclr noise must have shape (2, N, {view_noise_dim(self.in_chans)}) = "
                             f"(2, {N}, {view_noise_dim(self.in_chans)}), got {tuple(noise.shape)}")
        return torch.cat([augment(imgs, noise[0]), augment(imgs, noise[1])])

    # ---------------------------------------------------------------------------------------------------
    # encoder
    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float = 0.0, noise: torch.Tensor | None = None):
        """Every token, in image order: latent (N, 1 + L, D), mask of zeros (N, L), identity ids_restore."""
        if mask_ratio:
            raise ValueError(f"the contrastive model does not mask (mask_ratio={mask_ratio}); use mask_ratio=0")
        x = self.embed(imgs)  # (N, L, D)
        N, L, _ = x.shape
        ids_restore = torch.arange(L, device=imgs.device).expand(N, L)
        mask = torch.zeros(N, L, device=imgs.device, dtype=x.dtype)
        return self.encode_tokens(x), mask, ids_restore

    def forward_decoder_hidden(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        raise ValueError("the contrastive model (simclr) has no decoder; its analyses are the encoder's")

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise ValueError("the contrastive model (simclr) reconstructs nothing; its loss is compute_losses'")

    def project(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs (M, C, H, W) -> (M, proj_dim): the projector on the final-normed CLS token."""
        return self.projector(self.encode_tokens(self.embed(imgs))[:, 0])

    def compute_losses(self, imgs: torch.Tensor, mask_ratio: float = 0.0,
                       noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"loss", "loss_nce", "z"}: NT-Xent of the two views' projections z (2N, proj_dim), view 1 first.

        noise: the views' (2, N, ``view_noise_dim``) uniform numbers (``view_noise``), None: the global RNG."""
        if mask_ratio:
            raise ValueError(f"the contrastive model does not mask (mask_ratio={mask_ratio}); use mask_ratio=0")
        views = self.make_views(imgs, noise)  # (2N, C, H, W), both views through the encoder as one batch
        z = self.project(views)
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.temperature)
        return {"loss": loss, "loss_nce": loss.detach(), "z": z}

    def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.0, noise: torch.Tensor | None = None):
        """imgs (N, C, H, W) -> the NT-Xent loss (a scalar)."""
        return self.compute_losses(imgs, mask_ratio, noise)["loss"]
