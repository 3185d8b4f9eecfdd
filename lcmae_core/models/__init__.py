"""Models: the official MAE, LC-MAE, the block autoencoder, the SimCLR-style contrastive ViT, and named sizes.

Sizes follow facebookresearch/mae's factories (ViT-B/16, L/16, H/14 with a 512-d, 8-block decoder) plus tiny,
small and test sizes. ``create_model(family, size, **overrides)`` builds any family at any size;
``build_model(cfg, num_classes)`` builds a run config's model (every pretraining family and the finetune and
linprobe classifiers), the one description of a run's model that the recipes train and the run loader rebuilds.
"""

from __future__ import annotations

import torch.nn as nn

from .autoencoder import BlockAutoencoderViT, block_targets
from .classifier import CLASSIFIER_FAMILIES, build_classifier, classifier_kwargs
from .contrastive import ContrastiveViT
from .lcmae import LCMAE, TABLE1_SETTINGS, setting_weights
from .mae import MaskedAutoencoderViT

# name -> constructor arguments
SIZES: dict[str, dict] = {
    "huge_patch14": dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16,
                         decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16),
    "large_patch16": dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16,
                          decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16),
    "base_patch16": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12,
                         decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16),
    "small_patch16": dict(patch_size=16, embed_dim=384, depth=12, num_heads=6,
                          decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8),
    "tiny_patch16": dict(patch_size=16, embed_dim=192, depth=12, num_heads=3,
                         decoder_embed_dim=128, decoder_depth=4, decoder_num_heads=4),
    # the ViT-T/4 of the GPU benchmark, at 32 px
    "tiny_patch4": dict(img_size=32, patch_size=4, embed_dim=192, depth=12, num_heads=3,
                        decoder_embed_dim=128, decoder_depth=4, decoder_num_heads=4),
    # a size for unit tests: 16 tokens of width 32
    "test": dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                 decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2, mlp_ratio=2.0),
}

FAMILIES = {"mae": MaskedAutoencoderViT, "lcmae": LCMAE, "ae": BlockAutoencoderViT, "simclr": ContrastiveViT}


def create_model(family: str = "mae", size: str = "base_patch16", **overrides):
    """Build a model of a family ('mae', 'lcmae', 'ae', 'simclr') at a named size, with any argument overridden."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    return FAMILIES[family](**{**SIZES[size], **overrides})


# every family a run trains: the pretraining families and the classifiers
RUN_FAMILIES = (*FAMILIES, *CLASSIFIER_FAMILIES)


def run_model_kwargs(cfg, num_classes: int | None = None) -> dict:
    """The constructor kwargs (all primitives) of a run config's model: ``FAMILIES[family]``'s for a pretraining
    family, a timm ``VisionTransformer``'s for finetune / linprobe. ``num_classes``: the classifier's class count,
    which only the data knows for a folder dataset (the checkpoint keeps it). The one definition of a run's model
    shape: the recipes build from it and the run loader rebuilds from it."""
    if cfg.family in CLASSIFIER_FAMILIES:
        if num_classes is None:
            raise ValueError(f"a {cfg.family} run's model needs num_classes")
        return classifier_kwargs(cfg, num_classes)
    return cfg.model.kwargs(cfg.family)


def build_model(cfg, num_classes: int | None = None) -> nn.Module:
    """A run config's model, randomly initialised (the recipes then load or initialise what they own)."""
    return build_from_kwargs(cfg.family, run_model_kwargs(cfg, num_classes))


def build_from_kwargs(family: str, kwargs: dict) -> nn.Module:
    """A randomly initialised model of any run family from its constructor kwargs (``run_model_kwargs``)."""
    if family in FAMILIES:
        return FAMILIES[family](**kwargs)
    if family in CLASSIFIER_FAMILIES:
        return build_classifier(family, kwargs)
    raise ValueError(f"unknown run family {family!r}; choose one of {', '.join(RUN_FAMILIES)}")


def _factory(size: str, **defaults):
    def make(**kwargs):
        return MaskedAutoencoderViT(**{**SIZES[size], **defaults, **kwargs})
    make.__name__ = f"mae_vit_{size}"
    make.__doc__ = f"MAE ViT {size}: {SIZES[size]}"
    return make


mae_vit_base_patch16 = _factory("base_patch16")
mae_vit_large_patch16 = _factory("large_patch16")
mae_vit_huge_patch14 = _factory("huge_patch14")
mae_vit_small_patch16 = _factory("small_patch16")
mae_vit_tiny_patch16 = _factory("tiny_patch16")
mae_vit_tiny_patch4 = _factory("tiny_patch4")
mae_vit_test = _factory("test")

# the official factory names
mae_vit_base_patch16_dec512d8b = mae_vit_base_patch16
mae_vit_large_patch16_dec512d8b = mae_vit_large_patch16
mae_vit_huge_patch14_dec512d8b = mae_vit_huge_patch14

OFFICIAL_NAMES = {
    "mae_vit_base_patch16": "base_patch16",
    "mae_vit_large_patch16": "large_patch16",
    "mae_vit_huge_patch14": "huge_patch14",
    "mae_vit_base_patch16_dec512d8b": "base_patch16",
    "mae_vit_large_patch16_dec512d8b": "large_patch16",
    "mae_vit_huge_patch14_dec512d8b": "huge_patch14",
}

__all__ = [
    "MaskedAutoencoderViT", "LCMAE", "BlockAutoencoderViT", "ContrastiveViT", "block_targets", "TABLE1_SETTINGS",
    "setting_weights", "SIZES", "FAMILIES", "CLASSIFIER_FAMILIES", "RUN_FAMILIES", "create_model",
    "run_model_kwargs", "build_model", "build_from_kwargs", "OFFICIAL_NAMES",
    "mae_vit_base_patch16", "mae_vit_large_patch16", "mae_vit_huge_patch14", "mae_vit_small_patch16",
    "mae_vit_tiny_patch16", "mae_vit_tiny_patch4", "mae_vit_test",
]
