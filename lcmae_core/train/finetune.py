"""Finetuning recipe (fb/mae ``main_finetune``) on a timm ``VisionTransformer(global_pool='avg')``.

The classifier averages the patch tokens and normalises them with a fresh ``fc_norm``; the encoder's final
``norm`` is not used with average pooling, so it is not loaded. From the pretraining run it loads
``cls_token``, ``pos_embed`` (the fixed sin-cos table, trainable from here on), ``patch_embed.*`` and
``blocks.*``; the head is initialised with a truncated normal of std 2e-5, as fb/mae does.

AdamW (betas 0.9, 0.999), weight decay 0.05, layer-wise rate decay 0.75 (timm ``create_optimizer_v2`` with
``layer_decay``: block i gets 0.75^(depth - i), the patch embedding 0.75^(depth + 1), the head 1), drop path
0.1, mixup 0.8 / cutmix 1.0 with label smoothing 0.1 (timm ``Mixup`` and ``SoftTargetCrossEntropy``),
RandAugment m9 and random erasing 0.25. Metrics: top-1 (and top-5 at ImageNet scale) on the val split.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2

from .. import data as data_mod
from ..models import build_model
from ..models.classifier import load_pretrained_encoder
from . import common
from .engine import ClassifyObjective, evaluate
from .trainer import Job

def build(cfg, device: torch.device, pretrained: dict | None = None) -> Job:
    """The finetuning job; ``pretrained``: the pretraining run's model state dict (None: random init), which the
    run store reads (``runs.pretrained_weights``)."""
    info = data_mod.dataset_info(cfg.data.dataset)
    K = data_mod.num_classes(cfg.data.dataset, cfg.data.root)
    model = build_model(cfg, K)
    if pretrained is not None:
        load_pretrained_encoder(model, pretrained)
        nn.init.trunc_normal_(model.head.weight, std=2e-5)
    model.to(device)
    o = cfg.optim
    optimizer = create_optimizer_v2(model, "adamw", lr=o.absolute_lr(), weight_decay=o.weight_decay,
                                    layer_decay=o.layer_decay, betas=tuple(o.betas), fused=True)
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.smoothing, num_classes=K)
        criterion = SoftTargetCrossEntropy()
    elif cfg.smoothing > 0:
        criterion = LabelSmoothingCrossEntropy(smoothing=cfg.smoothing)
    else:
        criterion = nn.CrossEntropyLoss()
    train_set = common.train_dataset(cfg, "finetune", randaug=cfg.randaug, reprob=cfg.reprob)
    make_loader = common.batched_loader(cfg, train_set, device)

    def final_eval() -> dict:
        va = common.eval_dataset(cfg, cfg.data.dataset, "val")
        res = evaluate(model, common.eval_loader(va, common.eval_batch_size(cfg), cfg, device), device, cfg.amp,
                       top5=info.top5)
        return {f"val_{k}" if k in ("loss", "num_samples") else k: v for k, v in res.items()}

    return Job(model=model, objective=ClassifyObjective(model, criterion, mixup), optimizer=optimizer,
               train_set=train_set, final_eval=final_eval, make_loader=make_loader, num_classes=K)
