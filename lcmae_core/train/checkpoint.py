"""Checkpoints: plain dicts of tensors and primitives, written atomically, read with ``weights_only=True``.

A checkpoint is::

    {"model": state_dict,            # the bare model (never a DDP wrapper): fb/mae key names
     "config": {...},                # the run config (configs.to_dict), as the run folder's config.json
     "num_classes": int or None,     # the classifier's class count (None for pretraining)
     "epoch": int,                   # epochs finished; training resumes at this epoch
     "step": int,                    # optimizer steps taken
     "optimizer": ..., "scaler": ... or None,
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor] , "numpy": {...}, "python": [...]},
     "sampler_epoch": int, "loader_generator": ByteTensor}

A weight snapshot ``snapshot-epoch{N}.pt`` (kept when ``snapshot_every`` > 0; N = 0 is the initialisation) holds
only ``model``, ``config``, ``num_classes``, ``epoch`` and ``step``: ``reference_models.load_run`` reads it like a
checkpoint. ``snapshots(run_dir)`` lists them by epoch.

The model is described once: by the run config and the class count (``model_record``), from which
``models.run_model_kwargs`` gives its constructor kwargs, for the recipe that trains it and for the loader that
rebuilds it (``model_spec``). A checkpoint carries the run config, not only the folder beside it, so that a
checkpoint or a snapshot copied elsewhere still says what it holds. Checkpoints written before this format kept a
second, per-recipe description (``config``: family and constructor kwargs) beside ``run_config``; ``model_spec``
still reads them.

Nothing in it needs unpickling of code: no ``argparse.Namespace``, no numpy arrays (the numpy RNG state is
stored as a tensor), so ``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import errno
import os
import random
import shutil

import numpy as np
import torch

from .. import configs
from ..atomic import atomic_open
from ..models import RUN_FAMILIES, run_model_kwargs
from ..errors import first_line
from ..pretrained import CheckpointError, unreadable


def atomic_save(obj, path: str) -> None:
    """torch.save through ``lcmae_core.atomic``: a reader never sees half a file, and a kill at any point leaves
    either the old file or the new one. A write that fails for want of space (torch reports it as a
    ``RuntimeError`` from its zip writer) becomes an ``OSError`` that says so."""
    try:
        with atomic_open(path, "wb") as f:
            torch.save(obj, f)
    except RuntimeError as e:
        if "inline_container" not in str(e) and "write" not in str(e).lower():
            raise
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
        raise OSError(errno.ENOSPC, f"could not write {path}: the disk is full or failing ({free // 2**20} MiB "
                                    "free); free some space, then rerun the same command to resume") from None


def model_record(cfg, num_classes: int | None) -> dict:
    """What a checkpoint keeps to rebuild its model: {"config": the run config, "num_classes": ...}."""
    return {"config": configs.to_dict(cfg), "num_classes": num_classes}


RECORD_FORMAT = ('{"model": state_dict, "config": the run config (configs.to_dict), "num_classes": int or None} '
                 '(the training engine\'s checkpoint.pt)')


def model_spec(ckpt: dict) -> tuple[str, dict]:
    """(family, constructor kwargs) of the model a checkpoint holds, from its ``model_record`` (or from the
    per-recipe ``config`` of a checkpoint written before it: {"family", "model": kwargs} beside ``run_config``).
    Raises ``CheckpointError`` naming what does not fit."""
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(f"no run config in it; expected {RECORD_FORMAT}")
    if "run_config" in ckpt or "optim" not in config:  # the earlier format: config = {"family", "model": kwargs}
        family, kwargs = config.get("family"), config.get("model")
        if family not in RUN_FAMILIES:
            raise CheckpointError(f"config['family'] is {family!r}; expected one of {', '.join(RUN_FAMILIES)}")
        if not isinstance(kwargs, dict):
            raise CheckpointError(f"config['model'] must be a dict of constructor kwargs, got "
                                  f"{type(kwargs).__name__}")
        return family, kwargs
    try:
        cfg = configs.from_dict(config)
        return cfg.family, run_model_kwargs(cfg, ckpt.get("num_classes"))
    except (configs.ConfigError, ValueError) as e:
        raise CheckpointError(f"its run config does not describe a model: {first_line(e)}") from None


SNAPSHOT = "snapshot-epoch{}.pt"


def snapshot_path(run_dir: str, epoch: int) -> str:
    return os.path.join(run_dir, SNAPSHOT.format(epoch))


def snapshots(run_dir: str) -> dict[int, str]:
    """{epoch: path} of the weight snapshots in a run folder, by epoch (empty when none were kept)."""
    found = {}
    for name in os.listdir(run_dir):
        head, _, tail = name.partition("snapshot-epoch")
        if not head and tail.endswith(".pt") and tail[:-3].isdigit():
            found[int(tail[:-3])] = os.path.join(run_dir, name)
    return dict(sorted(found.items()))


CHECKPOINT = "checkpoint.pt"  # a run folder's checkpoint: the latest weights, optimizer and RNG states


class MissingCheckpoint(CheckpointError, FileNotFoundError):
    """No checkpoint where one was asked for; the message names the file and what to do."""


def _run_folder(path: str) -> str | None:
    """The run folder a file sits in (its folder holds a run's config.json), else None."""
    folder = os.path.dirname(os.path.abspath(path))
    return folder if os.path.isfile(os.path.join(folder, "config.json")) else None


def load(path: str, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``. A run folder stands for its ``checkpoint.pt``. A missing or
    unreadable file raises ``CheckpointError`` naming the file it wanted and the fix, which never advises deleting
    more than the one run the file belongs to (nor anything, for a file outside a run folder)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inner = os.path.join(path, CHECKPOINT)
        if not os.path.isfile(inner):
            raise MissingCheckpoint(f"{path} is a folder with no {CHECKPOINT}; pass a checkpoint file (a run "
                                    f"folder's {CHECKPOINT})")
        path = inner
    run = _run_folder(path)
    if not os.path.exists(path):
        done = run is not None and os.path.isfile(os.path.join(run, "metrics.json"))
        raise MissingCheckpoint(f"no checkpoint at {path}" + (
            f"; that run finished but its checkpoint is gone: remove that run's folder {run} to train it again"
            if done else "; pass the checkpoint of a run (its folder's checkpoint.pt) or a weights file"))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, empty, garbage, or untrusted objects
        fix = (f"remove that run's folder {run} to train it again" if run is not None
               else "replace it with a file you trust that holds tensors only")
        raise unreadable(path, e, fix) from None


def rng_state() -> dict:
    """Every RNG a training step may touch: torch (CPU and CUDA), numpy's global and python's."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    st = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "python": [st[0], list(st[1]), st[2]],
    }


def set_rng_state(state: dict) -> None:
    """Restore ``rng_state()``'s states; its tensors may have been loaded onto a GPU (``map_location``)."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
