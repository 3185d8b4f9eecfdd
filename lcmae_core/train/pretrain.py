"""Pretraining recipe (MAE, LC-MAE, block AE, SimCLR): the paper's Section 5 with fb/mae's ``main_pretrain``.

AdamW with betas (0.9, 0.95) and weight decay 0.05, none on norms, biases, tokens and position embeddings
(``model.no_weight_decay()``); rate ``base_lr * batch / 256`` with warmup and cosine decay; RandomResizedCrop
(0.2, 1) and flips. At the end: the kNN accuracy of the encoder's CLS feature (mask ratio 0, after the final
norm) on a labelled set, and for LC-MAE the collapse monitors on a held-out batch (on the projector output v
and, as ``final_hidden_*``, on the decoder hidden state h).
"""

from __future__ import annotations

import torch

from .. import data as data_mod
from ..models import build_model
from .monitors import lcmae_collapse
from .. import gpu_data
from . import common
from . import distributed as dist_utils
from .engine import PretrainObjective, make_optimizer
from .trainer import Job


def encoder_cls(model):
    """imgs (N, C, H, W) -> (N, D): the CLS token after the encoder's final norm, every patch visible."""
    def fn(imgs):
        return model.encode_tokens(model.embed(imgs))[:, 0]
    return fn


def build(cfg, device: torch.device, pretrained: dict | None = None) -> Job:
    """The pretraining job (``pretrained`` is unused: pretraining starts from scratch)."""
    model = build_model(cfg).to(device)
    optimizer = make_optimizer(cfg, model, device)
    make_loader = None
    d = cfg.data
    if gpu_data.choose_data_path(d.data_path, device, d.dataset, d.limit) == "gpu":
        train_set, make_loader = gpu_train_data(cfg, device)
    else:
        train_set = common.train_dataset(cfg, "pretrain")
        make_loader = common.batched_loader(cfg, train_set, device)
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
            imgs = collapse_batch(cfg, ds).to(device)
            out.update({f"final_{k}": v for k, v in lcmae_collapse(model, imgs, cfg.mask_ratio, cfg.seed).items()})
        return out

    return Job(model=model, objective=PretrainObjective(model, cfg.mask_ratio), optimizer=optimizer,
               train_set=train_set, final_eval=final_eval,
               find_unused_parameters=cfg.family == "lcmae" and not all((model.w_mae, model.w_cross, model.w_in)),
               make_loader=make_loader)


def collapse_batch(cfg, ds) -> torch.Tensor:
    """The fixed held-out batch of the collapse monitors: the first 64 images of ``ds`` -> (N, C, H, W)."""
    return torch.stack([ds[i][0] for i in range(min(64, len(ds)))])


def gpu_train_data(cfg, device: torch.device):
    """(the JPEG folder of the training split, make_loader(sampler, batch_size) -> a ``gpu_data.GpuLoader``):
    the GPU data path (``gpu_data``: JPEG decode and crops on the device) that ``build`` takes when
    ``gpu_data.choose_data_path`` picks it."""
    d = cfg.data
    seed = dist_utils.epoch_seed(cfg.seed, 0, dist_utils.rank(), stream=3) % 2**31  # crops differ per rank
    folder = gpu_data.JpegFolder(data_mod._folder_split(d.root, "train", d.dataset))

    def make_loader(sampler, batch_size: int):
        aug = gpu_data.GpuAugment(cfg.model.img_size, tuple(d.crop_scale), hflip=data_mod.hflip_of(d), seed=seed)
        return gpu_data.GpuLoader(folder, batch_size, device, aug, num_workers=d.num_workers, sampler=sampler,
                                  seed=seed)

    return folder, make_loader
