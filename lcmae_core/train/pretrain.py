"""Pretraining recipe (MAE, LC-MAE, block AE): the paper's Section 5 with fb/mae's ``main_pretrain``.

AdamW with betas (0.9, 0.95) and weight decay 0.05, none on norms, biases, tokens and position embeddings
(``model.no_weight_decay()``); rate ``base_lr * batch / 256`` with warmup and cosine decay; RandomResizedCrop
(0.2, 1) and flips. At the end: the kNN accuracy of the encoder's CLS feature (mask ratio 0, after the final
norm) on a labelled set, and for LC-MAE the collapse monitors on a held-out batch (on the projector output v
and, as ``final_hidden_*``, on the decoder hidden state h).
"""

from __future__ import annotations

import torch
from timm.optim import create_optimizer_v2

from .. import data as data_mod
from ..models import FAMILIES
from ..monitors import collapse_stats
from . import common
from .engine import PretrainObjective
from .trainer import Job


def build_model(cfg):
    return FAMILIES[cfg.family](**cfg.model.kwargs(cfg.family))


def encoder_cls(model):
    """imgs (N, C, H, W) -> (N, D): the CLS token after the encoder's final norm, every patch visible."""
    def fn(imgs):
        return model.encode_tokens(model.embed(imgs))[:, 0]
    return fn


def build(cfg, device: torch.device, run_root: str | None = None) -> Job:
    model = build_model(cfg).to(device)
    o = cfg.optim
    optimizer = create_optimizer_v2(model, "adamw", lr=o.absolute_lr(), weight_decay=o.weight_decay,
                                    betas=tuple(o.betas), **({"fused": True} if device.type == "cuda" else {}))
    train_set = common.train_dataset(cfg, "pretrain")
    eval_name = cfg.data.eval_dataset or (cfg.data.dataset
                                          if data_mod.dataset_info(cfg.data.dataset).num_classes != 0 else None)

    @torch.no_grad()
    def final_eval() -> dict:
        model.eval()
        out = {}
        if cfg.knn and eval_name is not None:
            out.update(common.knn_eval(encoder_cls(model), cfg, device, eval_name))
        if cfg.family == "lcmae":
            # collapse monitors on one fixed held-out batch
            ds = common.eval_dataset(cfg, eval_name, "val") if eval_name else train_set
            imgs = torch.stack([ds[i][0] for i in range(min(64, len(ds)))]).to(device)
            g = torch.Generator(device=device).manual_seed(cfg.seed)
            noise = torch.rand(2, len(imgs), model.num_patches, generator=g, device=device)
            res = model.compute_losses(imgs, cfg.mask_ratio, noise)
            stats = collapse_stats(res["v"], res["mask"])
            out.update({f"final_{k}": v for k, v in stats.items()})
            stats = collapse_stats(res["hidden"], res["mask"])  # h, the projector's input
            out.update({f"final_hidden_{k}": v for k, v in stats.items()})
        return out

    ck_cfg = {"family": cfg.family, "model": cfg.model.kwargs(cfg.family), "mask_ratio": cfg.mask_ratio,
              "dataset": cfg.data.dataset, "scale": cfg.scale}
    return Job(model=model, objective=PretrainObjective(model, cfg.mask_ratio), optimizer=optimizer,
               train_set=train_set, checkpoint_config=ck_cfg, final_eval=final_eval,
               find_unused_parameters=cfg.family == "lcmae")
