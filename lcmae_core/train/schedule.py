"""The learning-rate schedule: linear warmup, then a half-cycle cosine, as a pure function of a fractional epoch.

The rate is set at every optimizer step from ``epoch + step / steps_per_epoch`` (facebookresearch/mae,
``util/lr_sched.adjust_learning_rate``)::

    lr(e) = lr * e / warmup                                                   e <  warmup
    lr(e) = min_lr + (lr - min_lr) * (1 + cos(pi * (e - warmup) / (epochs - warmup))) / 2    e >= warmup

Parameter groups may carry an ``lr_scale`` (timm's layer-decay groups do); each group gets ``lr(e) * lr_scale``.
"""

from __future__ import annotations

import math

import torch


def lr_at(epoch: float, lr: float, epochs: float, warmup_epochs: float = 0.0, min_lr: float = 0.0) -> float:
    """The learning rate at a fractional epoch (see the module docstring)."""
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    span = epochs - warmup_epochs
    if span <= 0:
        return lr
    progress = min(max((epoch - warmup_epochs) / span, 0.0), 1.0)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate to ``lr * group['lr_scale']`` (scale 1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
