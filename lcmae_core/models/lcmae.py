"""LC-MAE (Sec. 3.3, Fig. 1): MAE plus two explicit local contrastive losses.

Two masked views of each image go through the shared encoder and decoder. A projector, one linear layer
(output dimension 1024 by default), reads the decoder's final hidden states and gives v = p(h(x, m)). The
objective is any weighted subset of

- L_MAE (Eq. 1), the reconstruction loss, averaged over both views;
- L_cross (Eq. 5), between the two views, at positions masked in both;
- L_in (Eq. 6), within each view, at pairs of masked positions, averaged over both views.

There are no stop-gradients, predictors or momentum encoders: with L_cross alone (setting (c)) the features
are free to collapse, which is what the paper reports.

Readings of the paper (see the book's method page):
- the projector input is the decoder's final hidden state, after ``decoder_norm`` and before ``decoder_pred``;
- the in-view loss compares with the cosine matrix of the input image's patches, as the encoder sees them
  ("the cosine similarity matrix of the input image patches x"), not the per-patch normalised reconstruction
  targets; ``in_view_target="target"`` gives the other reading (see ``IN_VIEW_TARGETS``);
- both views go through the model as one batch of 2N images: view 1 is rows [0, N), view 2 rows [N, 2N).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..losses import cross_view_loss, in_view_loss, mae_loss
from ..masking import MASK_RATIO, check_mask_ratio, masking_from_noise
from .mae import MaskedAutoencoderViT, gather_tokens

# Table 1: which of (L_MAE, L_cross, L_in) each setting uses.
TABLE1_SETTINGS: dict[str, tuple[float, float, float]] = {
    "a": (1.0, 1.0, 1.0),
    "b": (1.0, 0.0, 0.0),
    "c": (0.0, 1.0, 0.0),
    "d": (0.0, 0.0, 1.0),
    "e": (1.0, 1.0, 0.0),
    "f": (1.0, 0.0, 1.0),
    "g": (0.0, 1.0, 1.0),
}


# what L_in (Eq. 6) compares the outputs' cosine matrix with: "input" (the default), the patches of the input
# image as the encoder sees it; "target", the reconstruction targets (per-patch normalised under norm-pix, where
# a flat patch is the zero vector and has cosine 0 with every patch)
IN_VIEW_TARGETS = ("input", "target")


def setting_weights(setting: str) -> tuple[float, float, float]:
    """The (w_mae, w_cross, w_in) of a Table 1 setting, 'a' to 'g'."""
    try:
        return TABLE1_SETTINGS[setting.lower()]
    except KeyError:
        raise ValueError(f"unknown Table 1 setting {setting!r}; choose one of {', '.join(TABLE1_SETTINGS)}") from None


class LCMAE(MaskedAutoencoderViT):
    """Local Contrastive MAE. Takes every ``MaskedAutoencoderViT`` argument, plus:

    proj_dim: the projector's output dimension (1024 in the paper).
    in_view_target: "input" or "target", the patches whose cosine matrix L_in matches (``IN_VIEW_TARGETS``).
    weights:  (w_mae, w_cross, w_in), or ``setting="a".."g"`` for Table 1.
    """

    def __init__(self, *args, proj_dim: int = 1024, weights: tuple[float, float, float] | None = None,
                 setting: str | None = None, in_view_target: str = "input", **kwargs):
        super().__init__(*args, **kwargs)
        if in_view_target not in IN_VIEW_TARGETS:
            raise ValueError(f"unknown in_view_target {in_view_target!r}; choose one of {', '.join(IN_VIEW_TARGETS)}")
        self.in_view_target = in_view_target
        if weights is not None and setting is not None:
            raise ValueError("give either weights or setting, not both")
        w = setting_weights(setting) if setting is not None else (weights or (1.0, 1.0, 1.0))
        if len(w) != 3 or not any(float(x) for x in w):
            raise ValueError(f"weights must be three numbers (w_mae, w_cross, w_in), not all zero; got {w}")
        self.w_mae, self.w_cross, self.w_in = (float(x) for x in w)
        self.projector = nn.Linear(self.decoder_embed.out_features, proj_dim)
        nn.init.xavier_uniform_(self.projector.weight)
        nn.init.constant_(self.projector.bias, 0)

    def forward_views(self, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO, noise: torch.Tensor | None = None):
        """Both views in one batched pass.

        imgs: (N, C, H, W); noise: (2, N, L) or None.
        Returns pred (2N, L, P), v (2N, L, proj_dim), mask (2N, L), hidden (2N, L, Dd); view 1 first.
        """
        check_mask_ratio(mask_ratio)
        N, L = imgs.shape[0], self.num_patches
        x = self.embed(imgs)  # (N, L, D), patch embedding computed once for both views
        if noise is None:
            noise = torch.rand(2, N, L, device=imgs.device)
        elif tuple(noise.shape) != (2, N, L):
            raise ValueError(f"LC-MAE noise must have shape (2, N, L) = (2, {N}, {L}), got {tuple(noise.shape)}")
        m = masking_from_noise(noise.reshape(2 * N, L).to(imgs.device), mask_ratio)
        x = gather_tokens(x.repeat(2, 1, 1), m.ids_keep)  # (2N, len_keep, D)
        latent = self.encode_tokens(x)
        hidden = self.forward_decoder_hidden(latent, m.ids_restore)  # (2N, L, Dd)
        return self.decoder_pred(hidden), self.projector(hidden), m.mask, hidden

    def compute_losses(self, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO,
                       noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"loss", "loss_mae", "loss_cross", "loss_in", "pred", "mask", "v", "hidden"}; parts with weight 0 are
        still reported (computed without gradient) so that every setting logs the same curves.

        "hidden" is the decoder's final hidden state that feeds both heads; collapse monitors should watch it
        as well as "v": a linear projector can collapse v on its own while hidden stays spread (setting (e)).
        """
        pred, v, mask, hidden = self.forward_views(imgs, mask_ratio, noise)
        target = self.targets(imgs)  # (N, L, P)
        target2 = torch.cat([target, target], 0)  # (2N, L, P)
        v1, v2 = v.chunk(2)
        m1, m2 = mask.chunk(2)
        parts = {
            "loss_mae": (self.w_mae, lambda: mae_loss(pred, target2, mask)),
            "loss_cross": (self.w_cross, lambda: cross_view_loss(v1, v2, m1, m2)),
            "loss_in": (self.w_in, lambda: in_view_loss(v, self.in_view_patches(imgs, target), mask)),
        }
        out: dict[str, torch.Tensor] = {}
        loss = None
        for name, (w, fn) in parts.items():
            if w:
                value = fn()
                loss = w * value if loss is None else loss + w * value
                out[name] = value.detach()
            else:
                with torch.no_grad():
                    out[name] = fn()
        out.update(loss=loss, pred=pred, mask=mask, v=v, hidden=hidden)
        return out

    def in_view_patches(self, imgs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(N, L, P): the patches whose cosine matrix L_in matches (``in_view_target``)."""
        return target if self.in_view_target == "target" else self.patchify(imgs)

    def forward(self, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO, noise: torch.Tensor | None = None):
        """-> (loss, pred (2N, L, P), mask (2N, L)), view 1 in rows [0, N)."""
        out = self.compute_losses(imgs, mask_ratio, noise)
        return out["loss"], out["pred"], out["mask"]
