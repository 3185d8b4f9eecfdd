"""Does a state dict fit a model? The one comparison that every loader makes (a run's checkpoint, a ViT checkpoint,
fb/mae's file, a classifier's pretrained encoder); each loader keeps its own policy on what may be missing and
its own error."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass
class StateFit:
    """unexpected: keys of the state dict the model lacks; missing: keys of the model the state dict lacks;
    shapes: "key (checkpoint shape) vs (model shape)" for each shared key whose shapes differ."""

    unexpected: set = field(default_factory=set)
    missing: set = field(default_factory=set)
    shapes: list = field(default_factory=list)


def state_fit(own: Mapping, sd: Mapping) -> StateFit:
    """Compare a state dict ``sd`` with a model's own ``state_dict()`` ``own``."""
    shared = [k for k in sd if k in own]
    return StateFit(unexpected=set(sd) - set(own), missing=set(own) - set(sd),
                    shapes=[f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in shared
                            if sd[k].shape != own[k].shape])


def brief(keys: Iterable, n: int = 8) -> str:
    """Up to n sorted keys, and how many more: for one-line errors."""
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
