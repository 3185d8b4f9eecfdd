"""One training loop for every family, and the evaluations (top-1/top-5, kNN).

The loop does not know what it trains. It sees an **objective**: a module whose ``forward(imgs, labels)``
returns a dict with a scalar ``"loss"`` to minimise and any number of scalar ``"loss_*"`` parts to log
(pretraining: ``model.compute_losses``; finetuning and linear probing: a classification loss). An objective
may also have ``monitor(out) -> {name: float}``, called when the loop reads its numbers (LC-MAE's collapse
monitors).

``train_step`` is one micro-batch (forward, backward, and on the last micro-batch of an optimizer step: clip,
step, ``zero_grad(set_to_none=True)``); ``make_optimizer`` is the pretraining recipe's (fused) AdamW;
``enable_tf32`` turns on TF32 matmuls on CUDA. ``train_one_epoch``:

- sets the learning rate at every optimizer step from the fractional epoch (``schedule.lr_at``);
- runs the forward pass under bf16 autocast on CUDA (fp16 with a ``GradScaler`` if asked), in fp32 on CPU;
- accumulates gradients over ``accum_iter`` micro-batches (DDP syncs only on the last one);
- keeps running sums on the device and reads them every ``log_every`` steps, so there is no host sync per step;
- records the first optimizer step whose loss is not finite, on the device, and stops with ``NonFiniteLoss``
  naming that step when it next reads;
- shows a tqdm bar and hands one record per read to ``on_log`` (the JSON-lines log);
- returns the epoch's averages, all-reduced over processes.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from tqdm.auto import tqdm

from .monitors import collapse_stats
from . import distributed as dist_utils
from .schedule import set_lr


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


# -------------------------------------------------------------------------------------------------------
# objectives
class PretrainObjective(nn.Module):
    """Pretraining: ``model.compute_losses(imgs, mask_ratio)`` (MAE, LC-MAE, block AE); labels are ignored."""

    def __init__(self, model: nn.Module, mask_ratio: float):
        super().__init__()
        self.model, self.mask_ratio = model, mask_ratio

    def forward(self, imgs: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.model.compute_losses(imgs, self.mask_ratio)

    @torch.no_grad()
    def monitor(self, out: dict) -> dict[str, float]:
        """LC-MAE: collapse monitors on the L2-normalised projector outputs v of the masked tokens, and as
        ``hidden_*`` on the decoder hidden state h that feeds the projector (a linear projector can collapse v
        while h stays spread)."""
        if "v" not in out:
            return {}
        stats = {k: v for k, v in collapse_stats(out["v"].detach(), out["mask"]).items() if k != "uniform_std"}
        if "hidden" in out:
            stats.update({f"hidden_{k}": v for k, v in collapse_stats(out["hidden"].detach(), out["mask"]).items()
                          if k != "uniform_std"})
        return stats


class ClassifyObjective(nn.Module):
    """Classification: ``criterion(model(imgs), targets)``.

    imgs: (N, C, H, W) (or (N, D) cached features); targets: (N,) int64 labels, or (N, num_classes) soft targets.
    Mixup/cutmix is ``batch_transform``, which ``train_one_epoch`` applies to each training batch before the
    step, as fb/mae's finetuning loop does: timm's ``Mixup`` draws from numpy's RNG, which would break the
    compiled graph of the forward pass in two.
    """

    def __init__(self, model: nn.Module, criterion: nn.Module, mixup: Callable | None = None):
        super().__init__()
        self.model, self.criterion, self.mixup = model, criterion, mixup

    def batch_transform(self, imgs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup/cutmix of a training batch: (imgs, (N, num_classes) soft targets); unchanged without mixup."""
        if self.mixup is not None and self.training:
            return self.mixup(imgs, labels)
        return imgs, labels

    def forward(self, imgs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": self.criterion(self.model(imgs), targets)}


# -------------------------------------------------------------------------------------------------------
def autocast_for(device: torch.device, amp: str):
    """bf16 (or fp16) autocast on CUDA; no autocast on CPU (fp32)."""
    if device.type == "cuda" and amp in ("bf16", "fp16"):
        return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
    return contextlib.nullcontext()


def enable_tf32(device: torch.device) -> None:
    """TF32 tensor cores for fp32 matmuls and convolutions on CUDA (the fp32 parts of a bf16 run); no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def make_optimizer(cfg, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """The pretraining recipe's optimizer: timm AdamW with ``cfg.optim``'s rate, betas and weight decay (none on
    ``model.no_weight_decay()``, norms and biases), fused (one kernel over every parameter: on the CPU 1.0 ms a step
    instead of 4.7 for the cpu preset's MAE, measured)."""
    o = cfg.optim
    params = model if o.decoder_lr_scale == 1.0 else decoder_scaled_groups(model, o.weight_decay, o.decoder_lr_scale)
    return create_optimizer_v2(params, "adamw", lr=o.absolute_lr(), weight_decay=o.weight_decay,
                               betas=tuple(o.betas), fused=True)


def is_decoder_parameter(name: str) -> bool:
    """An MAE-family decoder's parameter: the mask token and every ``decoder_*`` module or tensor."""
    return name == "mask_token" or name.split(".")[0].startswith("decoder")


def decoder_scaled_groups(model: nn.Module, weight_decay: float, decoder_lr_scale: float) -> list[dict]:
    """timm's weight-decay groups (no decay on ``model.no_weight_decay()``, on biases and on every 1-d tensor), each
    split into the encoder's part and the decoder's (``is_decoder_parameter``), the decoder's with ``lr_scale``
    ``decoder_lr_scale`` (``schedule.set_lr`` multiplies each group's rate by it at every step)."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim <= 1 or name.endswith(".bias") or name in skip)
        groups.setdefault((decay, is_decoder_parameter(name)), []).append(p)
    if not any(dec for _, dec in groups):
        raise ValueError(f"optim.decoder_lr_scale={decoder_lr_scale} but {type(model).__name__} has no decoder "
                         "parameters; set optim.decoder_lr_scale=1")
    return [{"params": ps, "weight_decay": weight_decay if decay else 0.0,
             "lr_scale": decoder_lr_scale if dec else 1.0} for (decay, dec), ps in groups.items()]


def train_step(objective: nn.Module, optimizer: torch.optim.Optimizer, imgs: torch.Tensor, labels, *,
               device: torch.device, amp: str = "fp32", scaler: torch.amp.GradScaler | None = None,
               accum_iter: int = 1, clip_grad: float | None = None, last_micro: bool = True,
               params: list | None = None, cuda_graphs: bool = False, keep_outputs: bool = False,
               autocast=None) -> tuple[dict[str, torch.Tensor], dict | None]:
    """One micro-batch of training: forward under the engine's autocast (``autocast``: another context to use
    instead), ``(loss.float() / accum_iter).backward()`` (through ``scaler`` when fp16), and on the last
    micro-batch of an optimizer step (``last_micro``): gradient clipping to ``clip_grad``, the optimizer step
    (``scaler.step`` / ``update`` when fp16) and ``zero_grad(set_to_none=True)``. DDP's ``no_sync`` is the
    caller's. With ``cuda_graphs``, ``torch.compiler.cudagraph_mark_step_begin()`` comes first.

    Returns ({"loss", "loss_*": detached float scalars on the device (no host sync)}, the objective's output
    dict when ``keep_outputs`` else None): nothing else of the step stays alive after it.
    """
    if cuda_graphs:
        torch.compiler.cudagraph_mark_step_begin()
    with autocast_for(device, amp) if autocast is None else autocast:
        out = objective(imgs, labels)
    loss = out["loss"]
    scaled = loss.float() / accum_iter
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    del scaled
    if last_micro:
        if params is None:
            params = [p for g in optimizer.param_groups for p in g["params"]]
        if scaler is not None:
            if clip_grad:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, clip_grad)
            scaler.step(optimizer)
            scaler.update()
        else:
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(params, clip_grad)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    # copies, not views: with CUDA graphs the outputs' memory is overwritten by the next replay
    losses = {k: v.detach().float().mean().clone() for k, v in out.items() if k == "loss" or k.startswith("loss_")}
    return losses, (out if keep_outputs else None)


def _monitor_of(objective):
    inner = getattr(objective, "module", objective)
    return getattr(inner, "monitor", None)


def _batch_transform_of(objective):
    inner = getattr(objective, "module", objective)  # under DDP
    return getattr(inner, "batch_transform", None)


def train_one_epoch(objective: nn.Module, loader, optimizer: torch.optim.Optimizer, *, epoch: int,
                    lr_fn: Callable[[float], float], device: torch.device, amp: str = "fp32",
                    scaler: torch.amp.GradScaler | None = None, accum_iter: int = 1, clip_grad: float | None = None,
                    log_every: int = 20, start_step: int = 0, on_log: Callable[[dict], None] | None = None,
                    progress: bool = True, desc: str = "", last_checkpoint: str | None = None,
                    cuda_graphs: bool = False) -> dict[str, float]:
    """Train for one pass over ``loader`` (``train_step`` per micro-batch); returns {"loss", "loss_*" averages,
    "steps", "lr", "time_s"}.

    start_step: optimizer steps taken before this epoch (for logging and error messages). Only the micro-batches
    whose numbers are read (every ``log_every``) keep their outputs, for the objective's ``monitor``, until read.
    """
    objective.train()
    n = len(loader)
    if n == 0:
        raise ValueError("the training set is smaller than one batch; lower optim.batch_size or add data")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    sums: dict[str, torch.Tensor] = {}
    last_read: dict[str, float] = {}
    last_i = 0
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    step = start_step
    lr = 0.0
    t0 = time.time()
    is_ddp = isinstance(objective, nn.parallel.DistributedDataParallel)
    monitor = _monitor_of(objective)
    batch_transform = _batch_transform_of(objective)  # mixup/cutmix, outside the compiled forward
    bar = tqdm(loader, total=n, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    optimizer.zero_grad(set_to_none=True)
    try:  # the bar is closed however the epoch ends: a Ctrl-C's line then starts a line of its own
        for i, (imgs, labels) in enumerate(bar):
            if i % accum_iter == 0:
                lr = lr_fn(epoch + i / n)
                set_lr(optimizer, lr)
            imgs = imgs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if batch_transform is not None:
                imgs, labels = batch_transform(imgs, labels)
            last_micro = (i + 1) % accum_iter == 0 or i + 1 == n
            read_now = (i + 1) % log_every == 0 or i + 1 == n
            this_step = step  # 0-based index of the optimizer step this micro-batch belongs to
            sync = contextlib.nullcontext() if (last_micro or not is_ddp) else objective.no_sync()
            with sync:
                losses, out = train_step(objective, optimizer, imgs, labels, device=device, amp=amp, scaler=scaler,
                                         accum_iter=accum_iter, clip_grad=clip_grad, last_micro=last_micro,
                                         params=params, cuda_graphs=cuda_graphs,
                                         keep_outputs=read_now and monitor is not None)
            del imgs, labels
            if last_micro:
                step += 1
            # running sums stay on the device: no host sync here
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v
            bad = ~torch.isfinite(losses["loss"])
            first_bad = torch.where(bad & (first_bad < 0), torch.full_like(first_bad, this_step), first_bad)
            del losses
            if read_now:
                if is_ddp:  # every rank stops together, or the others would wait in the next gradient sync
                    flag = dist_utils.all_reduce_sum((first_bad >= 0).float())
                    if float(flag) > 0 and first_bad < 0:
                        first_bad = torch.full_like(first_bad, this_step)
                bad_step = int(first_bad)  # the one host sync of this window
                if bad_step >= 0:
                    raise NonFiniteLoss(
                        f"loss is not finite at optimizer step {bad_step} (epoch {epoch}); stopping. "
                        + (f"The last good checkpoint is {last_checkpoint}." if last_checkpoint
                           else "No checkpoint was written yet.")
                        + " Lower the learning rate or check the data.")
                now = {k: float(v) for k, v in sums.items()}
                record = {k: (now[k] - last_read.get(k, 0.0)) / (i + 1 - last_i) for k in now}
                record.update(event="train", epoch=epoch, step=step, lr=lr, epoch_frac=round(epoch + (i + 1) / n, 4))
                if monitor is not None:
                    record.update(monitor(out))
                last_read, last_i = now, i + 1
                if progress:
                    bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
                if on_log is not None:
                    on_log(record)
            out = None  # the step's outputs (LC-MAE: pred, v, hidden) go before the next forward
    finally:
        bar.close()
    names = sorted(sums)
    totals = torch.stack([sums[k] for k in names]) / n
    totals = dist_utils.all_reduce_mean(totals)
    result = {k: float(v) for k, v in zip(names, totals.tolist())}
    if not all(math.isfinite(v) for v in result.values()):
        raise NonFiniteLoss(f"loss is not finite in epoch {epoch}; stopping. "
                            + (f"The last good checkpoint is {last_checkpoint}." if last_checkpoint else ""))
    result.update(steps=step - start_step, lr=lr, time_s=time.time() - t0)
    return result


# -------------------------------------------------------------------------------------------------------
# evaluation
@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, amp: str = "fp32",
             top5: bool = True, per_sample: bool = False) -> dict:
    """Top-1 (and top-5) accuracy in %, and the cross-entropy, over a loader's samples; summed over processes.

    model: images (N, C, H, W) -> logits (N, K). per_sample (one process, unshuffled loader): also "correct",
    the top-1 hit of every sample in loader order as ``pack_correct`` text (McNemar across models).
    """
    model.eval()
    tot = torch.zeros(4, dtype=torch.float64, device=device)  # correct1, correct5, loss sum, count
    hits = []
    for imgs, labels in loader:
        imgs, labels = imgs.to(device), labels.to(device)
        with autocast_for(device, amp):
            logits = model(imgs)
        logits = logits.float()
        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices  # (N, k)
        hit = topk == labels[:, None]
        if per_sample:
            hits.append(hit[:, 0].cpu())
        tot += torch.stack([hit[:, 0].sum(), hit.any(1).sum(), F.cross_entropy(logits, labels, reduction="sum"),
                            torch.tensor(len(labels), device=device)]).double()
    tot = dist_utils.all_reduce_sum(tot)
    c1, c5, loss, count = tot.tolist()
    out = {"top1": 100.0 * c1 / max(count, 1), "loss": loss / max(count, 1), "num_samples": int(count)}
    if top5:
        out["top5"] = 100.0 * c5 / max(count, 1)
    if per_sample and dist_utils.world_size() == 1:
        out["correct"] = pack_correct(torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool))
    return out


def pack_correct(correct: torch.Tensor) -> str:
    """Per-sample hits (M,) bool -> a compact hex text (8 samples a byte), for a run's metrics.json."""
    return np.packbits(correct.cpu().numpy().astype(bool)).tobytes().hex()


def unpack_correct(text: str, n: int):
    """``pack_correct``'s text back to a numpy bool array of n samples."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))
    if len(bits) < n or len(bits) - n >= 8:
        raise ValueError(f"the packed hits hold {len(bits)} bits, which cannot be {n} samples")
    return bits[:n].astype(bool)


@torch.no_grad()
def extract_features(feature_fn: Callable[[torch.Tensor], torch.Tensor], loader, device: torch.device,
                     amp: str = "fp32", progress: bool = False, desc: str = "features"):
    """Run ``feature_fn`` (images (N, C, H, W) -> (N, D)) over a loader -> (features (M, D) float32 on CPU,
    labels (M,) int64)."""
    feats, labs = [], []
    for imgs, labels in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with autocast_for(device, amp):
            f = feature_fn(imgs.to(device))
        feats.append(f.float().cpu())
        labs.append(labels)
    return torch.cat(feats), torch.cat(labs)


@torch.no_grad()
def knn_classify(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 20, temperature: float = 0.07, num_classes: int | None = None,
                 chunk: int = 1024, per_sample: bool = False) -> dict:
    """Weighted kNN on cosine similarity, as DINO's evaluation: each of the k nearest training features votes
    for its class with weight exp(cos / T). train_feats: (M, D), test_feats: (Q, D). Returns top-1 (and top-5
    when there are at least 5 classes) in %; per_sample: also "knn_correct", each query's top-1 hit
    (``pack_correct`` text)."""
    num_classes = int(num_classes or int(train_labels.max()) + 1)
    k = min(k, len(train_feats))
    tr = F.normalize(train_feats.float(), dim=1)
    te = F.normalize(test_feats.float(), dim=1)
    c1 = c5 = 0
    hits = []
    for s in range(0, len(te), chunk):
        sim = te[s:s + chunk] @ tr.T  # (q, M)
        w, idx = sim.topk(k, dim=1)  # (q, k)
        votes = torch.zeros(len(w), num_classes)
        votes.scatter_add_(1, train_labels[idx], (w / temperature).exp())
        pred = votes.topk(min(5, num_classes), dim=1).indices  # (q, 5)
        y = test_labels[s:s + chunk, None]
        hits.append((pred[:, 0] == y[:, 0]))
        c1 += int((pred[:, :1] == y).sum())
        c5 += int((pred == y).any(1).sum())
    out = {"knn_top1": 100.0 * c1 / len(te)}
    if num_classes >= 5:
        out["knn_top5"] = 100.0 * c5 / len(te)
    if per_sample:
        out["knn_correct"] = pack_correct(torch.cat(hits))
    return out
