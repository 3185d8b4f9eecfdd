"""Distributed helpers: the torchrun environment, DDP, per-rank data order, reductions.

A process is distributed when ``WORLD_SIZE`` > 1 is in its environment (torchrun sets it; the SLURM launcher
sets it from submitit's job environment). ``init()`` then starts the process group: NCCL on CUDA, gloo on CPU.
Rank 0 writes every file; metrics are all-reduced so every rank sees the same numbers.
"""

from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def init(device: str) -> torch.device:
    """Start the process group when launched by torchrun/SLURM; returns this process's device.

    device: 'cpu' or 'cuda[:N]'. With CUDA and several processes, each takes cuda:LOCAL_RANK.
    """
    distributed = env_world_size() > 1
    if device.startswith("cuda"):
        if distributed:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            dev = torch.device("cuda", local)
        else:
            dev = torch.device(device)
    else:
        dev = torch.device("cpu")
    if distributed and not is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return dev


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if is_initialized():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    return all_reduce_sum(t) / world_size() if is_initialized() else t


def broadcast_object(obj, src: int = 0):
    """rank src's obj on every rank."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class EpochSampler(torch.utils.data.Sampler):
    """The data order of an epoch as a pure function of (seed, epoch): a seeded permutation, cut into
    contiguous-stride shards per rank (rank r takes positions r, r + W, ...), padded by wrapping so that every
    rank gets the same count. ``set_epoch`` picks the epoch; resuming at epoch e replays exactly its order."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True):
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.epoch = 0
        self.per_rank = -(-n // world) if shuffle else len(range(rank, n, world))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        if not self.shuffle:  # evaluation: each sample exactly once, over all ranks
            return list(range(self.rank, self.n, self.world))
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, stream=1))
        perm = torch.randperm(self.n, generator=g).tolist()
        total = self.per_rank * self.world
        perm = (perm * (total // max(len(perm), 1) + 1))[:total]
        return perm[self.rank::self.world]

    def __iter__(self):
        return iter(self.order())

    def __len__(self) -> int:
        return self.per_rank


def epoch_seed(seed: int, epoch: int, rank: int = 0, stream: int = 0) -> int:
    """A 63-bit seed, a pure function of (seed, epoch, rank, stream)."""
    h = hashlib.sha256(f"{seed}/{epoch}/{rank}/{stream}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)
