"""facebookresearch/mae's model and pretraining step, imported from a checkout, for the benchmarks that compare
against it (``bench/official_cpu_ratio.py``, ``bench/official_ratio.py``).

The official code is imported from a folder the user names (a checkout of facebookresearch/mae: ``models_mae.py``
and ``util/``); it is never copied into this repository. It was written for timm 0.3.2, so two things are patched
**at run time, in the imported module's namespace only**:

- ``models_mae.Block`` is wrapped so that the ``qk_scale=None`` the official code passes is dropped (timm 1.x's
  ``Block`` rejects it; ``None`` was its default, so nothing changes);
- ``numpy.float`` (removed in numpy 1.24, used by ``util/pos_embed.py``) is aliased to ``float`` if missing.

``OfficialStep`` is the official training step as published (``engine_pretrain.train_one_epoch`` with
``accum_iter`` 1 and ``misc.NativeScalerWithGradNormCount``), written here from what that code does: the step's
learning rate set on every parameter group, the forward pass under CUDA fp16 autocast, ``loss.item()`` and a
finiteness check, the GradScaler's scaled backward, ``unscale_``, the gradients' total 2-norm, the scaler's step
and update, ``zero_grad()`` and ``torch.cuda.synchronize()``. Its optimizer is ``main_pretrain.py``'s: AdamW with
betas (0.9, 0.95) over timm's weight-decay groups (no decay on biases and 1-D parameters).
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import sys
from functools import partial

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, for lcmae_core when run as a script

from lcmae_core.errors import UsageError  # noqa: E402

# the constructor arguments of fb/mae's MaskedAutoencoderViT that a config of ours sets
OFFICIAL_KWARGS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
                   "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss")


def import_official(official_dir: str):
    """Import ``models_mae`` from a facebookresearch/mae checkout and patch, in its namespace, what timm 1.x
    and numpy 2 need."""
    import numpy as np

    if not official_dir or not os.path.isfile(os.path.join(official_dir, "models_mae.py")):
        raise UsageError(f"{official_dir!r} has no models_mae.py; pass a checkout of facebookresearch/mae "
                            "(git clone https://github.com/facebookresearch/mae)")
    if not hasattr(np, "float"):
        np.float = float  # util/pos_embed.py uses np.float (removed in numpy 1.24)
    sys.path.insert(0, os.path.abspath(official_dir))
    try:
        sys.modules.pop("models_mae", None)  # the folder named now, not one imported earlier
        mod = importlib.import_module("models_mae")
    finally:
        sys.path.pop(0)
    timm_block = mod.Block

    class Block(timm_block):
        """timm 1.x Block that accepts (and drops) the official ``qk_scale=None``."""

        def __init__(self, *args, qk_scale=None, **kwargs):
            if qk_scale is not None:
                raise ValueError("qk_scale other than None is not supported by timm 1.x")
            super().__init__(*args, **kwargs)

    mod.Block = Block
    return mod


def official_model(mod, kwargs: dict) -> nn.Module:
    """fb/mae's ``MaskedAutoencoderViT`` of the shape of one of our MAE-family configs (its ``OFFICIAL_KWARGS``),
    with the LayerNorm eps 1e-6 of fb/mae's named models."""
    params = inspect.signature(mod.MaskedAutoencoderViT.__init__).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kw = {k: kwargs[k] for k in OFFICIAL_KWARGS if k in kwargs and (open_ended or k in params)}
    return mod.MaskedAutoencoderViT(**kw, norm_layer=partial(nn.LayerNorm, eps=1e-6))


def official_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.05) -> torch.optim.Optimizer:
    """main_pretrain.py's optimizer: AdamW, betas (0.9, 0.95), over timm's weight-decay parameter groups."""
    from timm.optim import param_groups_weight_decay

    return torch.optim.AdamW(param_groups_weight_decay(model, weight_decay), lr=lr, betas=(0.9, 0.95))


def grad_norm(parameters) -> torch.Tensor:
    """The total 2-norm of the gradients, as misc.get_grad_norm_ computes it (a norm of the per-tensor norms)."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    return torch.norm(torch.stack([torch.norm(g, 2.0) for g in grads]), 2.0)


class OfficialStep:
    """One step of fb/mae's pretraining loop on a fixed batch (see the module's docstring). ``views`` > 1 feeds
    the batch that many times as one larger batch (LC-MAE's two views of each image through fb/mae's model)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, imgs: torch.Tensor, lr: float,
                 mask_ratio: float = 0.75, views: int = 1):
        self.model, self.optimizer, self.lr, self.mask_ratio = model, optimizer, lr, mask_ratio
        self.imgs = torch.cat([imgs] * views) if views > 1 else imgs
        self.device = imgs.device
        self.cuda = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda)
        self.last_norm = None

    def __call__(self) -> float:
        for group in self.optimizer.param_groups:  # lr_sched.adjust_learning_rate, every step
            group["lr"] = self.lr * group.get("lr_scale", 1.0)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.cuda):
            loss, _, _ = self.model(self.imgs, mask_ratio=self.mask_ratio)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the official model's loss is {loss_value}")
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        self.last_norm = grad_norm(self.model.parameters())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.cuda:
            torch.cuda.synchronize()
        return loss_value
