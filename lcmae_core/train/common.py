"""Pieces the three recipes share: datasets from a config, evaluation loaders, encoder features, kNN."""

from __future__ import annotations

import numpy as np
import torch

from .. import configs
from .. import data as data_mod
from .. import gpu_data
from . import distributed as dist_utils
from .engine import extract_features, knn_classify


def train_dataset(cfg, recipe: str, **transform_kw):
    """The training split of cfg.data with the transform of a recipe ('pretrain' | 'finetune')."""
    d = cfg.data
    info = data_mod.dataset_info(d.dataset)
    tf = data_mod.build_transform(recipe, info, cfg.model.img_size, crop_scale=d.crop_scale, hflip=data_mod.hflip_of(d),
                                  **transform_kw)
    return data_mod.build_dataset(d.dataset, "train", tf, root=d.root, download=d.download, image=d.image,
                                  samples_per_epoch=d.samples_per_epoch, limit=d.limit,
                                  photo_short_side=d.photo_short_side)


def batched_loader(cfg, train_set, device: torch.device):
    """``make_loader(sampler, batch_size)`` when the augmentation is batched (``configs.augment_backend``: the
    bundled sets of the smoke and cpu scales): the in-memory images augmented a batch at a time
    (``gpu_data.TensorLoader``: RandomResizedCrop with a bilinear, box-filtered resize instead of PIL's bicubic,
    flip, normalise); None for ``"pil"``, the per-image transform."""
    if configs.augment_backend(cfg) != "batched":
        return None
    d = cfg.data
    info = data_mod.dataset_info(d.dataset)
    base, keep = train_set, None
    if isinstance(train_set, torch.utils.data.Subset):  # data.limit: a seeded subset
        base, keep = train_set.dataset, np.asarray(train_set.indices)
    if isinstance(base, data_mod.ArrayImages):  # grey (N, H, W) -> N x (3, H, W)
        grey, labels = np.asarray(base.images), np.asarray(base.labels)
        if keep is not None:
            grey, labels = grey[keep], labels[keep]
        images = list(torch.from_numpy(np.ascontiguousarray(grey))[:, None].expand(-1, 3, -1, -1))
        labels, cycle = torch.as_tensor(labels), False
    elif isinstance(base, data_mod.PhotoCrops) and keep is None:
        images = [torch.from_numpy(np.array(p.convert("RGB"))).permute(2, 0, 1).contiguous() for p in base.photos]
        labels, cycle = torch.as_tensor(base.photo_labels), True
    else:
        raise data_mod.DataError(f"data.augment=batched needs a bundled in-memory dataset, not {d.dataset!r}; "
                                 "set data.augment=pil")
    seed = dist_utils.epoch_seed(cfg.seed, 0, dist_utils.rank(), stream=3) % 2**31  # crops differ per rank

    def make_loader(sampler, batch_size: int):
        # fp32 on every device: the bundled images are small, and a GPU's crops then match the CPU's, on which the
        # reference scales' recipes were screened
        aug = gpu_data.GpuAugment(cfg.model.img_size, tuple(d.crop_scale), hflip=data_mod.hflip_of(d), mean=info.mean,
                                  std=info.std, seed=seed, work_dtype=torch.float32)
        return gpu_data.TensorLoader(images, labels, batch_size, aug, sampler, seed=seed, cycle=cycle, device=device)
    return make_loader


class TensorBatches:
    """The batches a ``DataLoader(TensorDataset, sampler, drop_last=True)`` gives, cut from the tensors at once
    (one ``index_select`` a batch, not one item and a collate per sample): the linear probe's cached features, where
    the per-item path cost more than the head's training (2.8 of 4.3 s, measured). Same batches, same order."""

    def __init__(self, dataset: torch.utils.data.TensorDataset, sampler, batch_size: int):
        self.tensors, self.sampler, self.batch_size = dataset.tensors, sampler, batch_size

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(t.index_select(0, idx) for t in self.tensors)


def tensor_batches(dataset: torch.utils.data.TensorDataset):
    """``make_loader(sampler, batch_size)`` of a ``TensorDataset`` (``TensorBatches``)."""
    return lambda sampler, batch_size: TensorBatches(dataset, sampler, batch_size)


def eval_dataset(cfg, name: str, split: str):
    """A split of a labelled dataset with the eval transform (limit / val_limit of cfg.data apply)."""
    d = cfg.data
    limit = d.val_limit if split == "val" else d.limit  # the probe's region splits are parts of the training split
    fast = data_mod.eval_tensors(name, split, cfg.model.img_size, limit)
    if fast is not None:  # the bundled digits at their native size: the same tensors, computed at once
        return fast
    info = data_mod.dataset_info(name)
    tf = data_mod.build_transform("eval", info, cfg.model.img_size)
    return data_mod.build_dataset(name, split, tf, root=d.root, download=d.download, limit=limit,
                                  photo_short_side=d.photo_short_side, fixed=True)


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
