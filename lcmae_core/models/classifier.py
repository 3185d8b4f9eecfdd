"""The classifier of finetuning and linear probing: a timm ``VisionTransformer`` holding a pretrained encoder.

``vit_kwargs`` gives the ViT of a run config's encoder shape; ``load_pretrained_encoder`` copies the encoder of an
MAE-family state dict (fb/mae key names, which timm's ViT shares) into it. The pretraining run itself is found by
the run store (``runs.pretrained_weights``), which passes its weights to the recipes.
"""

from __future__ import annotations

import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

from .state import state_fit

ENCODER_PREFIXES = ("cls_token", "pos_embed", "patch_embed.", "blocks.")
# the run families whose model is this classifier: finetuning and the linear probe
CLASSIFIER_FAMILIES = ("finetune", "linprobe")


class PretrainMismatch(ValueError):
    """Pretrained weights that do not fit the classifier (one-line message naming the keys)."""


def vit_kwargs(cfg, num_classes: int, global_pool: str, drop_path: float) -> dict:
    """timm VisionTransformer constructor kwargs (all primitives) for the config's encoder."""
    return dict(**cfg.model.encoder_kwargs(), qkv_bias=True, num_classes=num_classes, global_pool=global_pool,
                drop_path_rate=drop_path)


def classifier_kwargs(cfg, num_classes: int) -> dict:
    """The classifier of a finetune run (average-pooled patch tokens, ``cfg.drop_path``) or of a linprobe run (the
    CLS token after the final norm, no drop path), as ``vit_kwargs``."""
    if cfg.family == "finetune":
        return vit_kwargs(cfg, num_classes, cfg.global_pool, cfg.drop_path)
    return vit_kwargs(cfg, num_classes, "token", 0.0)


def build_classifier(family: str, kwargs: dict) -> VisionTransformer:
    """A randomly initialised classifier of a finetune or linprobe run; the linear probe's head is fb/mae's
    BatchNorm1d without affine parameters, then Linear (it replaces the ViT's own head after that head's init,
    which keeps the random stream of the recipe)."""
    model = VisionTransformer(**kwargs)
    if family == "linprobe":
        D = model.embed_dim
        model.head = nn.Sequential(nn.BatchNorm1d(D, affine=False, eps=1e-6), nn.Linear(D, model.num_classes))
    return model


def load_pretrained_encoder(model: nn.Module, state: dict, keep_norm: bool = False) -> dict:
    """Copy the encoder weights of an MAE-family state dict into a timm ViT.

    Loads ``cls_token``, ``pos_embed``, ``patch_embed.*``, ``blocks.*`` (and ``norm.*`` when keep_norm, for the
    linear probe's CLS feature). Returns {"loaded": [...], "fresh": [...]} and raises ``PretrainMismatch`` for
    missing encoder keys or wrong shapes."""
    prefixes = ENCODER_PREFIXES + (("norm.",) if keep_norm else ())
    enc = {k: v for k, v in state.items() if k.startswith(prefixes)}
    fit = state_fit(model.state_dict(), enc)
    bad = sorted(fit.unexpected) + [s.split(" ", 1)[0] for s in fit.shapes]
    if bad:
        raise PretrainMismatch(f"pretrained weights do not fit the classifier: {', '.join(bad[:5])}")
    missing, unexpected = model.load_state_dict(enc, strict=False)
    need = [k for k in missing if k.startswith(prefixes)]
    if need:
        raise PretrainMismatch(f"pretrained checkpoint lacks encoder weights: {', '.join(need[:5])}")
    return {"loaded": sorted(enc), "fresh": sorted(missing)}
