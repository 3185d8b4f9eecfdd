"""Pieces the three recipes share: datasets from a config, evaluation loaders, encoder features, kNN."""

from __future__ import annotations

import torch

from .. import data as data_mod
from . import distributed as dist_utils
from .engine import extract_features, knn_classify


def train_dataset(cfg, recipe: str, **transform_kw):
    """The training split of cfg.data with the transform of a recipe ('pretrain' | 'finetune')."""
    d = cfg.data
    info = data_mod.dataset_info(d.dataset)
    tf = data_mod.build_transform(recipe, info, cfg.model.img_size, crop_scale=d.crop_scale, hflip=d.hflip,
                                  **transform_kw)
    return data_mod.build_dataset(d.dataset, "train", tf, root=d.root, download=d.download, image=d.image,
                                  samples_per_epoch=d.samples_per_epoch, limit=d.limit,
                                  photo_short_side=d.photo_short_side)


def eval_dataset(cfg, name: str, split: str):
    """A split of a labelled dataset with the eval transform (limit / val_limit of cfg.data apply)."""
    d = cfg.data
    info = data_mod.dataset_info(name)
    tf = data_mod.build_transform("eval", info, cfg.model.img_size)
    limit = d.limit if split == "train" else d.val_limit
    return data_mod.build_dataset(name, split, tf, root=d.root, download=d.download, limit=limit,
                                  photo_short_side=d.photo_short_side)


def eval_loader(ds, batch_size: int, cfg, device: torch.device, distributed: bool = True):
    """Each sample once, sharded over ranks when ``distributed``; no shuffling."""
    rank, world = (dist_utils.rank(), dist_utils.world_size()) if distributed else (0, 1)
    sampler = dist_utils.EpochSampler(len(ds), cfg.seed, rank, world, shuffle=False)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler,
                                       num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")


def eval_batch_size(cfg) -> int:
    return max(32, min(512, cfg.optim.batch_size // max(cfg.optim.accum_iter, 1)))


def knn_eval(feature_fn, cfg, device: torch.device, dataset: str) -> dict:
    """kNN accuracy of frozen features: the train split is the memory bank, the val split the queries.
    Computed on rank 0 over the whole sets and broadcast."""
    out = None
    if dist_utils.is_main():
        bs = eval_batch_size(cfg)
        tr = eval_dataset(cfg, dataset, "train")
        va = eval_dataset(cfg, dataset, "val")
        ftr, ytr = extract_features(feature_fn, eval_loader(tr, bs, cfg, device, False), device, cfg.amp)
        fva, yva = extract_features(feature_fn, eval_loader(va, bs, cfg, device, False), device, cfg.amp)
        out = knn_classify(ftr, ytr, fva, yva, k=cfg.knn_k, temperature=cfg.knn_t,
                           num_classes=data_mod.num_classes(dataset, cfg.data.root))
    return dist_utils.broadcast_object(out)
