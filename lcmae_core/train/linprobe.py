"""Linear probing (fb/mae ``main_linprobe``): BatchNorm1d(affine=False) + a linear head on the frozen encoder's
CLS feature (after the encoder's final norm), trained with LARS (timm ``Lars``), base lr 0.1, no weight decay
(``probe="lars"``, the paper scale's protocol); or, below it (``probe="logreg"``), the same head solved as a
converged logistic regression on the cached features, its L2 strength chosen on a held-out part of the training
split (``train.probe``; on a set whose val split is another region of its images, ``photo_ids``, on the training
region cut again: ``data.PROBE_SPLITS``).

The classifier is a timm ``VisionTransformer(global_pool='token')`` whose head is
``Sequential(BatchNorm1d(D, affine=False, eps=1e-6), Linear(D, K))``; everything but the head is frozen. The
head weight starts from a truncated normal of std 0.01, as fb/mae. LARS adapts the rate of the weight matrix
(trust ratio, coefficient 0.001) and not of the bias, as fb/mae's LARS excludes 1-D parameters.

With ``cache_features`` (the smoke and cpu presets) the frozen features are extracted once with the eval
transform and the head is trained on them: the same head and optimizer, no augmentation, a fraction of the
cost; the same features also give the weighted kNN accuracy (``knn_top1``, DINO's protocol, ``knn_k`` and
``knn_t`` of the config). The metrics keep each validation image's hit (``correct``, ``knn_correct``: packed
text, ``engine.unpack_correct``) so that two encoders can be compared on the same images (McNemar).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer
from timm.optim import Lars

from .. import data as data_mod
from ..models import build_model
from ..models.classifier import load_pretrained_encoder
from . import common
from .engine import ClassifyObjective, evaluate, extract_features, knn_classify
from .probe import fit_logreg, load_into_head
from .trainer import Job


def cls_features(model: VisionTransformer):
    """imgs (N, C, H, W) -> (N, D): the CLS token after the final norm (the head's input)."""
    def fn(imgs):
        return model.forward_head(model.forward_features(imgs), pre_logits=True)
    return fn


def build(cfg, device: torch.device, pretrained: dict | None = None) -> Job:
    """The linear-probe job; ``pretrained``: the pretraining run's model state dict (None: a random encoder)."""
    info = data_mod.dataset_info(cfg.data.dataset)
    K = data_mod.num_classes(cfg.data.dataset, cfg.data.root)
    model = build_model(cfg, K)  # the BatchNorm + Linear head of fb/mae's probe
    if pretrained is not None:
        load_pretrained_encoder(model, pretrained, keep_norm=True)
    nn.init.trunc_normal_(model.head[1].weight, std=0.01)
    nn.init.zeros_(model.head[1].bias)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    model.to(device)
    o = cfg.optim
    lin = model.head[1]
    optimizer = Lars([{"params": [lin.weight], "always_adapt": True},
                      {"params": [lin.bias], "always_adapt": False}],
                     lr=o.absolute_lr(), momentum=o.momentum, weight_decay=o.weight_decay)
    criterion = nn.CrossEntropyLoss()
    bs = common.eval_batch_size(cfg)

    if cfg.cache_features:
        feats = {}
        model.eval()
        # a set whose val split is another region of its images: the probe scores its strengths on region splits
        regions = data_mod.probe_splits(cfg.data.dataset) if cfg.probe == "logreg" else ()
        for split in ("train", "val") + regions:
            ds = common.eval_dataset(cfg, cfg.data.dataset, split)
            f, y = extract_features(cls_features(model), common.eval_loader(ds, bs, cfg, device, False), device,
                                    cfg.amp)
            feats[split] = torch.utils.data.TensorDataset(f, y)  # (M, D), (M,)
        train_set, objective, eval_model = feats["train"], ClassifyObjective(model.head, criterion), model.head
        make_loader = common.tensor_batches(train_set)
    else:
        tf = data_mod.build_transform("pretrain", info, cfg.model.img_size, crop_scale=cfg.data.crop_scale,
                                      hflip=data_mod.hflip_of(cfg.data))
        d = cfg.data
        train_set = data_mod.build_dataset(d.dataset, "train", tf, root=d.root, download=d.download, limit=d.limit)
        objective, eval_model = ClassifyObjective(model, criterion), model
        make_loader = None

    def final_eval() -> dict:
        if cfg.cache_features:
            loader = common.eval_loader(feats["val"], bs, cfg, device)
        else:
            loader = common.eval_loader(common.eval_dataset(cfg, cfg.data.dataset, "val"), bs, cfg, device)
        # the solved head in fp32 under any autocast: it holds the regression's fit (float64 on the CPU), whose
        # logits bf16 would round to 3 digits and whose top-1 would then not be the fit's; a LARS head is scored
        # under the run's autocast, as fb/mae scores it
        amp = "fp32" if cfg.probe == "logreg" else cfg.amp
        res = evaluate(eval_model, loader, device, amp, top5=info.top5, per_sample=True)
        out = {f"val_{k}" if k in ("loss", "num_samples") else k: v for k, v in res.items()}
        if cfg.cache_features:  # the kNN of the same frozen features: a second, nearly deterministic probe
            (ftr, ytr), (fva, yva) = feats["train"].tensors, feats["val"].tensors
            out.update(knn_classify(ftr, ytr, fva, yva, k=cfg.knn_k, temperature=cfg.knn_t, num_classes=K,
                                    per_sample=True))
        return out

    def solve() -> dict:  # the converged probe: the head is the fitted logistic regression
        f, y = feats["train"].tensors
        selection = tuple(t for s in regions for t in feats[s].tensors) or None
        fit = fit_logreg(f, y, K, selection=selection)
        load_into_head(model.head, fit)
        model.head.eval()
        with torch.no_grad():  # the fitted objective's data term: its cross-entropy on the training features
            train_loss = float(criterion(model.head(f.to(device)), y.to(device)))
        return {"train_loss": train_loss, **fit.metrics()}

    return Job(model=model, objective=objective, optimizer=optimizer, train_set=train_set,
               final_eval=final_eval, make_loader=make_loader, num_classes=K,
               solve=solve if cfg.probe == "logreg" else None)
