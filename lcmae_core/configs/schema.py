"""The config schema: the typed run configs of every family, their serialisation and hashing, overrides, validation.

A run is one of six families: the pretraining families ``mae``, ``lcmae``, ``ae``, ``simclr`` (``PretrainConfig``;
``simclr`` is the global contrastive model of Fig. 5, SimCLR's NT-Xent on the MAE encoder's CLS token) and
the evaluation families ``finetune`` (``FinetuneConfig``) and ``linprobe`` (``LinprobeConfig``). Each holds a
``ModelConfig`` (the constructor arguments), a ``DataConfig`` and an ``OptimConfig``.

``preset(family, scale)`` gives the recipe at a scale, built from the scale's record (``lcmae_core.scales``: the
model, data and optimizer of each family at smoke, cpu, gpu and paper, with the reasons for their values). At the
paper scale it is Section 5 of the paper, with facebookresearch/mae's defaults where the paper is silent: ImageNet-1K,
ViT-B/16, batch 1024, 100 epochs, 20 warmup epochs, base lr 1.5e-4 (MAE) / 6e-4 (LC-MAE), mask 0.75, norm-pix loss,
decoder depth 2 for LC-MAE (Table 1) and fb/mae's 8-block decoder for MAE; finetuning 100 epochs, batch 1024, base lr
1e-3, 5 warmup epochs, layer decay 0.75, drop path 0.1, mixup 0.8, cutmix 1.0, label smoothing 0.1, RandAugment m9,
random erasing 0.25; linear probing with LARS, base lr 0.1, batch 16384, 90 epochs, 10 warmup epochs, no weight
decay. Below it the linear probe is solved instead (``train.probe``).

Batch sizes are **global** (the paper's number): each step sees ``batch_size`` images across all processes
and accumulation steps, so the same config (and the same run hash) serves one GPU or 64. The absolute learning
rate is ``base_lr * batch_size / 256`` unless ``lr`` is given.

``apply_overrides(config, ["optim.epochs=3", "mask_ratio=0.6"])`` sets nested fields with type checking; an
unknown key or a badly typed value raises ``ConfigError``. ``to_dict``/``from_dict`` give the plain dict
saved with every run; ``config_hash`` hashes the fields that change the result (not the device, the data
root, the number of workers or the logging cadence).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from .. import scales
from ..data import DATASETS, FOLDER_DATASETS, PHOTO_NAMES, folder_identity, probe_splits
from ..masking import MASK_RATIO, num_visible
from ..models import CLASSIFIER_FAMILIES, FAMILIES, RUN_FAMILIES, SIZES, TABLE1_SETTINGS
from ..models.decoders import DECODERS
from ..models.lcmae import IN_VIEW_TARGETS

PRETRAIN_FAMILIES = tuple(FAMILIES)  # the model registry's families; a run of each is a PretrainConfig
EVAL_FAMILIES = CLASSIFIER_FAMILIES
ALL_FAMILIES = RUN_FAMILIES
# fields that do not change what a run computes: left out of the hash
NOT_HASHED = ("device", "threads", "log_every", "ckpt_every", "snapshot_every", "progress", "scale", "data.root",
              "data.download", "data.num_workers", "compile", "compile_mode", "cuda_graphs",
              "data.data_path")


AUGMENT_BACKENDS = ("auto", "pil", "batched")
PROBES = ("lars", "logreg")  # the linear probe: trained by LARS (fb/mae), or solved as a logistic regression
BATCHED_DATASETS = ("mnist5k", "photos", "photo_ids", "single_image")  # in memory: data.augment=batched applies

# Table 1: "we set the depth of the decoder to 2"; the book's MAE baseline shares it (Tables 1-3, A.1)
TABLE1_DECODER_DEPTH = 2

# torch.compile modes a config may name (CUDA graphs are cuda_graphs=true, which composes with them)
COMPILE_MODES = (None, "default", "max-autotune-no-cudagraphs")


class ConfigError(ValueError):
    """A config that cannot run: an unknown key, a badly typed value, an impossible setting. One-line message."""


# -------------------------------------------------------------------------------------------------------
@dataclass
class ModelConfig:
    """Constructor arguments of the models (``lcmae_core.models``); the encoder fields also shape the ViT
    classifier of finetuning and linear probing."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_pix_loss: bool = True
    decoder: str = "transformer"  # transformer | gaussian | conv (Table 2)
    decoder_kernel_size: int = 5
    gaussian_sigma: float = 1.0
    proj_dim: int = 1024  # LC-MAE projector output; simclr's projector output
    setting: Optional[str] = None  # LC-MAE Table 1 setting a..g (None: all three losses)
    in_view_target: str = "input"  # LC-MAE: L_in's patches, "input" (the input image's) or "target" (norm-pix)
    block_size: Optional[int] = None  # AE(b): None means b = patch_size

    ENCODER_FIELDS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio")

    @classmethod
    def from_size(cls, size: str, **overrides) -> "ModelConfig":
        if size not in SIZES:
            raise ConfigError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
        return cls(**{**SIZES[size], **overrides})

    def kwargs(self, family: str) -> dict:
        """The constructor kwargs of ``create_model``'s class for a pretraining family."""
        if family == "simclr":  # the encoder and the projector: no decoder
            return {**self.encoder_kwargs(), "proj_dim": self.proj_dim}
        kw = {k: getattr(self, k) for k in (
            "img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
            "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss", "decoder")}
        if self.decoder != "transformer":
            kw["decoder_kernel_size"] = self.decoder_kernel_size
        if self.decoder == "gaussian":
            kw["gaussian_sigma"] = self.gaussian_sigma
        if family == "lcmae":
            kw["proj_dim"] = self.proj_dim
            if self.setting is not None:
                kw["setting"] = self.setting
            kw["in_view_target"] = self.in_view_target
        elif family == "ae":
            kw["block_size"] = self.block_size or self.patch_size
        return kw

    def encoder_kwargs(self) -> dict:
        return {k: getattr(self, k) for k in self.ENCODER_FIELDS}


def encoder_overrides(model) -> dict:
    """{"model.<field>": value} of an encoder's shape (``ModelConfig.ENCODER_FIELDS``), from a ``ModelConfig`` or a run
    config's "model" dict: the one copier that makes a classifier take its pretrained encoder's shape."""
    get = model.get if isinstance(model, dict) else lambda k: getattr(model, k)
    return {f"model.{k}": get(k) for k in ModelConfig.ENCODER_FIELDS}


@dataclass
class DataConfig:
    dataset: str = "imagenet"
    root: Optional[str] = None  # not hashed: the same data may live anywhere
    download: bool = False  # torchvision sets only
    crop_scale: tuple[float, float] = (0.2, 1.0)  # RandomResizedCrop scale of the training transform
    hflip: Optional[float] = None  # None: the dataset's (``data.hflip_of``: 0.5, but 0 for digits)
    limit: Optional[int] = None  # keep a seeded subset of the training set (smoke scale)
    val_limit: Optional[int] = None
    samples_per_epoch: int = 4000  # photo sets: random crops per epoch
    image: str = "astronaut"  # single_image: which bundled photo
    photo_short_side: Optional[int] = 128  # photo sets: downscale once to this short side
    num_workers: int = 0
    data_path: str = "auto"  # imagefolder/imagenet pretraining: auto | gpu | cpu. gpu: JPEG decode and crops on the
    # GPU (gpu_data); cpu: PIL in loader workers; auto: gpu on CUDA, cpu on CPU. Not hashed
    eval_dataset: Optional[str] = None  # pretraining: labelled set for the kNN monitor (None: the dataset
    # itself when labelled, else none)
    augment: str = "auto"  # the training augmentation's backend: "pil" (torchvision/timm transforms, one image at
    # a time), "batched" (bundled in-memory sets only: one RandomResizedCrop + flip + normalise call per batch,
    # bilinear), or "auto": batched where it applies (``augment_backend``). Hashed: the crops differ


@dataclass
class OptimConfig:
    epochs: int = 100
    warmup_epochs: float = 20.0
    batch_size: int = 1024  # global, across processes and accumulation steps
    accum_iter: int = 1
    optimizer: str = "adamw"  # adamw | lars
    base_lr: float = 1.5e-4
    lr: Optional[float] = None  # absolute; None: base_lr * batch_size / 256
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    momentum: float = 0.9  # LARS
    layer_decay: Optional[float] = None
    clip_grad: Optional[float] = None
    # the decoder's rate (its blocks, embedding, mask token, norm and head) as a multiple of the encoder's: a lever
    # of the gpu scale's locality screen (bench/locality_screen.py), not the paper's recipe (one rate for all)
    decoder_lr_scale: float = 1.0

    def absolute_lr(self) -> float:
        return self.lr if self.lr is not None else self.base_lr * self.batch_size / 256


@dataclass
class RunConfig:
    family: str = "mae"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "bf16"  # bf16 | fp16 | fp32; autocast is used on CUDA only, CPU runs in fp32
    threads: Optional[int] = None  # torch CPU threads for this run (None: torch's default)
    scale: str = "custom"  # the preset it came from (a label, not hashed)
    log_every: int = 20  # read the loss from the device every this many steps
    ckpt_every: int = 1  # epochs between checkpoints (and always at the end)
    snapshot_every: int = 0  # epochs between kept weight snapshots snapshot-epoch{N}.pt (N = 0 is the
    # initialisation; always the last epoch); 0: none. Not hashed: the weights do not depend on it
    progress: bool = True
    compile: Optional[bool] = None  # torch.compile the training objective; None: on for CUDA, off on CPU. Not hashed
    # torch.compile mode: None (the default) or "max-autotune-no-cudagraphs" (autotuned matmul kernels: slower
    # to compile). Not hashed
    compile_mode: Optional[str] = None
    cuda_graphs: bool = False  # with compile on CUDA: mode="reduce-overhead" (CUDA graphs). Not hashed
    knn_k: int = 20
    knn_t: float = 0.07


@dataclass
class PretrainConfig(RunConfig):
    mask_ratio: float = MASK_RATIO
    knn: bool = True  # kNN accuracy of the frozen encoder at the end, when a labelled eval set exists


@dataclass
class FinetuneConfig(RunConfig):
    family: str = "finetune"
    pretrain: Optional[str] = None  # the pretraining run's name (family-hash); None: random initialisation
    drop_path: float = 0.1
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    randaug: Optional[str] = "rand-m9-mstd0.5-inc1"
    reprob: float = 0.25
    global_pool: str = "avg"


@dataclass
class LinprobeConfig(RunConfig):
    family: str = "linprobe"
    pretrain: Optional[str] = None
    cache_features: bool = False  # extract frozen features once (eval transform) and train the head on them
    # "lars": fb/mae's head trained by LARS for optim.epochs (the paper scale's protocol); "logreg": the head solved
    # as a converged, L2-regularised logistic regression on the cached features, its strength chosen on a held-out
    # part of the training split (``train.probe``; optim is then unused)
    probe: str = "lars"


CONFIG_CLASSES = {"mae": PretrainConfig, "lcmae": PretrainConfig, "ae": PretrainConfig, "simclr": PretrainConfig,
                  "finetune": FinetuneConfig, "linprobe": LinprobeConfig}


# -------------------------------------------------------------------------------------------------------
# presets
def check_scale(scale: str, custom: bool = False) -> str:
    """The one check of a scale name (``custom``: also the "custom" scale of a config built by hand)."""
    if scale not in scales.NAMES + (("custom",) if custom else ()):
        raise ConfigError(f"unknown scale {scale!r}; choose one of {', '.join(scales.NAMES)}")
    return scale


def _check_family(family: str) -> None:
    if family not in ALL_FAMILIES:
        raise ConfigError(f"unknown family {family!r}; choose one of {', '.join(ALL_FAMILIES)}")


# -------------------------------------------------------------------------------------------------------
# dicts, hashing
def to_dict(cfg) -> dict:
    """Plain dict of primitives (tuples become lists)."""
    def conv(x):
        if dataclasses.is_dataclass(x):
            return {f.name: conv(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        return x
    return conv(cfg)


def from_dict(d: dict) -> RunConfig:
    """Rebuild a config from ``to_dict`` output (the ``config`` of a run)."""
    family = d.get("family")
    _check_family(family)
    cls = CONFIG_CLASSES[family]
    return _build(cls, d, "")


def _build(cls, d: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for k, v in d.items():
        if k not in names:
            raise ConfigError(f"unknown config key {prefix + k!r}")
        t = hints[k]
        if dataclasses.is_dataclass(t):
            kwargs[k] = _build(t, v, prefix + k + ".")
        else:
            kwargs[k] = _coerce(v, t, prefix + k)
    return cls(**kwargs)


def config_hash(cfg) -> str:
    """12 hex digits of the SHA-256 of the config's hashed fields, in canonical JSON."""
    d = to_dict(from_dict(to_dict(cfg)))  # canonical types: 1 and 1.0 hash alike for a float field
    d["data"]["augment"] = augment_backend(cfg)  # "auto" hashes as what it resolves to
    d["data"]["hflip"] = _hflip(cfg.data)  # None hashes as the dataset's probability
    if cfg.family == "ae" and (cfg.model.block_size or cfg.model.patch_size) > cfg.model.patch_size:
        d["ae_targets"] = "in-image"  # the block targets stopped at the border (they were zero padded): a new run
    if cfg.data.dataset in FOLDER_DATASETS and cfg.data.root and os.path.isdir(cfg.data.root):
        # an image folder's identity, not its path: another folder is another run, the same one moved the same run
        d["data_identity"] = folder_identity(os.path.abspath(cfg.data.root))
    if d.get("optim", {}).get("decoder_lr_scale") == 1.0:  # one rate, as every run had before the field existed
        d["optim"].pop("decoder_lr_scale")
    if d.get("probe") == "lars":  # the probe every run had before the field existed: their names stay
        d.pop("probe")
    elif d.get("probe") == "logreg":  # solved, not trained: the optimizer settings do not enter the result
        d.pop("optim")
        if probe_splits(cfg.data.dataset):  # C chosen on the region splits: a new run
            d["probe_heldout"] = "region"
    if isinstance(d["model"].get("setting"), str):  # "A" and "a" are one setting, so one run
        d["model"]["setting"] = d["model"]["setting"].lower()
    for key in NOT_HASHED:
        parts = key.split(".")
        node = d
        for p in parts[:-1]:
            node = node.get(p, {})
        node.pop(parts[-1], None)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_name(cfg) -> str:
    return f"{cfg.family}-{config_hash(cfg)}"


# -------------------------------------------------------------------------------------------------------
# overrides
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(value: Any, t, key: str):
    """Convert value (a string from the command line, or a JSON value) to type t, or raise ConfigError."""
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, non_none[0], key)
    if origin is tuple:
        if isinstance(value, str):
            s = value.strip().strip("()[]")
            value = [v for v in s.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key} takes {len(args)} comma-separated values, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if t is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{key} takes true or false, got {value!r}")
    if t is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} takes an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        except (TypeError, ValueError):
            raise ConfigError(f"{key} takes an integer, got {value!r}") from None
    if t is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} takes a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} takes a number, got {value!r}") from None
    if t is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} takes a string, got {value!r}")
        return value
    return value


def valid_keys(cfg) -> list[str]:
    out = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out += [f"{f.name}.{k}" for k in valid_keys(v)]
        else:
            out.append(f.name)
    return out


def apply_overrides(cfg, overrides) -> RunConfig:
    """Apply ``key=value`` strings (or a {key: value} dict) to a copy of cfg, nested keys with dots."""
    cfg = copy.deepcopy(cfg)
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, value in items:
        node = cfg
        parts = key.split(".")
        for i, p in enumerate(parts):
            names = {f.name for f in dataclasses.fields(node)}
            if p not in names:
                near = [k for k in valid_keys(cfg) if k.split(".")[-1] == parts[-1]]
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise ConfigError(f"unknown config key {key!r}{hint}; every key: python -m lcmae_core pretrain "
                                  "--show-config")
            if i < len(parts) - 1:
                node = getattr(node, p)
                if not dataclasses.is_dataclass(node):
                    raise ConfigError(f"unknown config key {key!r}: {'.'.join(parts[:i + 1])} has no sub-keys")
            else:
                t = typing.get_type_hints(type(node))[p]
                if dataclasses.is_dataclass(t):
                    raise ConfigError(f"{key} is a group of settings; set its fields, e.g. {key}.<field>=...")
                setattr(node, p, _coerce(value, t, key))
    return cfg


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"an override is key=value, got {item!r}")
    k, v = item.split("=", 1)
    return k.strip(), v.strip()


# -------------------------------------------------------------------------------------------------------
def validate(cfg) -> RunConfig:
    """Raise ConfigError for a config that cannot run. Checks what can be checked without data or devices."""
    _check_family(cfg.family)
    if not isinstance(cfg, CONFIG_CLASSES[cfg.family]):
        raise ConfigError(f"family {cfg.family!r} needs a {CONFIG_CLASSES[cfg.family].__name__}")
    check_scale(cfg.scale, custom=True)
    m, d, o = cfg.model, cfg.data, cfg.optim
    if m.patch_size <= 0 or m.img_size % m.patch_size:
        raise ConfigError(f"image size {m.img_size} is not divisible by patch size {m.patch_size}; "
                          f"set model.img_size to a multiple of {m.patch_size}")
    for key in ("embed_dim", "depth", "num_heads", "decoder_embed_dim", "decoder_depth", "decoder_num_heads"):
        if getattr(m, key) < 1:
            raise ConfigError(f"model.{key} must be a positive integer, got {getattr(m, key)}")
    if m.embed_dim % m.num_heads or m.decoder_embed_dim % m.decoder_num_heads:
        raise ConfigError("embed_dim must be divisible by num_heads (and decoder_embed_dim by decoder_num_heads)")
    if m.decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {m.decoder!r}; choose transformer, gaussian or conv")
    if m.in_view_target not in IN_VIEW_TARGETS:
        raise ConfigError(f"unknown model.in_view_target {m.in_view_target!r}; choose {' or '.join(IN_VIEW_TARGETS)}")
    if m.setting is not None and m.setting.lower() not in TABLE1_SETTINGS:
        raise ConfigError(f"unknown LC-MAE setting {m.setting!r}; choose one of {', '.join(TABLE1_SETTINGS)}")
    if cfg.family == "ae":
        b = m.block_size or m.patch_size
        if b % m.patch_size or (b // m.patch_size) % 2 == 0:
            raise ConfigError(f"model.block_size must be an odd multiple of the patch size {m.patch_size}, got {b}")
    if isinstance(cfg, PretrainConfig):
        if not 0.0 <= cfg.mask_ratio < 1.0:
            raise ConfigError(f"mask ratio must be in [0, 1), got {cfg.mask_ratio}")
        L = (m.img_size // m.patch_size) ** 2
        if cfg.mask_ratio > 0 and num_visible(L, cfg.mask_ratio) < 1:
            top = 1 - 1 / L
            raise ConfigError(f"mask_ratio {cfg.mask_ratio} leaves no visible patch of the {L} (fb/mae keeps int(L x "
                              f"(1 - ratio))); set a mask ratio of at most {top:.4f}")
        if cfg.family in ("mae", "lcmae") and cfg.mask_ratio == 0:
            raise ConfigError(f"{cfg.family} with mask_ratio=0 has nothing to reconstruct (its loss is 0); set a mask "
                              "ratio in (0, 1), or pretrain the autoencoder (--family ae)")
        if cfg.family == "ae" and cfg.mask_ratio != 0:
            raise ConfigError(f"the autoencoder does not mask: set mask_ratio=0 (got {cfg.mask_ratio})")
        if cfg.family == "simclr" and cfg.mask_ratio != 0:
            raise ConfigError(f"simclr contrasts two unmasked views and does not mask: set mask_ratio=0 "
                              f"(got {cfg.mask_ratio})")
    if d.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {d.dataset!r}; choose one of {', '.join(DATASETS)}")
    if d.eval_dataset is not None and d.eval_dataset not in DATASETS:
        raise ConfigError(f"unknown eval dataset {d.eval_dataset!r}; choose one of {', '.join(DATASETS)}")
    if d.dataset == "single_image" and d.image not in PHOTO_NAMES:
        raise ConfigError(f"unknown bundled photo {d.image!r}; choose one of {', '.join(PHOTO_NAMES)}")
    if cfg.family in EVAL_FAMILIES and DATASETS[d.dataset].num_classes == 0:
        raise ConfigError(f"{cfg.family} needs a labelled dataset; {d.dataset!r} is unlabelled")
    if d.num_workers < 0:
        raise ConfigError(f"data.num_workers must be 0 (load in the training process) or more, got {d.num_workers}")
    if d.augment not in AUGMENT_BACKENDS:
        raise ConfigError(f"unknown data.augment {d.augment!r}; choose {' or '.join(AUGMENT_BACKENDS)}")
    if d.augment == "batched":
        if d.dataset not in BATCHED_DATASETS:
            raise ConfigError(f"data.augment=batched is for the bundled sets ({', '.join(BATCHED_DATASETS)}), not "
                              f"{d.dataset!r}; set data.augment=pil")
        if isinstance(cfg, FinetuneConfig) and (cfg.randaug or cfg.reprob):
            raise ConfigError("data.augment=batched does RandomResizedCrop and flips only; with RandAugment or "
                              "random erasing set data.augment=pil (or randaug=none reprob=0)")
    if not (0 < d.crop_scale[0] <= d.crop_scale[1] <= 1):
        raise ConfigError(f"data.crop_scale must satisfy 0 < lo <= hi <= 1, got {d.crop_scale}")
    if o.epochs < 1 or o.batch_size < 1 or o.accum_iter < 1:
        raise ConfigError("optim.epochs, optim.batch_size and optim.accum_iter must be positive")
    if o.batch_size % o.accum_iter:
        raise ConfigError(f"optim.batch_size {o.batch_size} is not divisible by optim.accum_iter {o.accum_iter}")
    if not 0 <= o.warmup_epochs <= o.epochs:
        raise ConfigError(f"optim.warmup_epochs must be in [0, epochs], got {o.warmup_epochs}")
    for key, v in (("optim.base_lr", o.base_lr), ("optim.lr", o.lr), ("optim.weight_decay", o.weight_decay),
                   ("optim.min_lr", o.min_lr)):
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"{key} must be a finite number >= 0, got {v}")
    if not (math.isfinite(o.decoder_lr_scale) and o.decoder_lr_scale > 0):
        raise ConfigError(f"optim.decoder_lr_scale must be a finite number > 0, got {o.decoder_lr_scale}")
    if o.decoder_lr_scale != 1.0 and cfg.family not in ("mae", "lcmae", "ae"):
        raise ConfigError(f"optim.decoder_lr_scale scales an MAE-family decoder's rate; a {cfg.family} run has "
                          "none: set optim.decoder_lr_scale=1")
    if o.absolute_lr() <= 0:
        raise ConfigError(f"the learning rate must be positive, got {o.absolute_lr()}; set optim.base_lr or optim.lr")
    if isinstance(cfg, LinprobeConfig):
        if cfg.probe not in PROBES:
            raise ConfigError(f"unknown probe {cfg.probe!r}; choose {' or '.join(PROBES)}")
        if cfg.probe == "logreg" and not cfg.cache_features:
            raise ConfigError("probe=logreg is solved on cached features; set cache_features=true (or probe=lars)")
    if o.optimizer not in ("adamw", "lars"):
        raise ConfigError(f"unknown optimizer {o.optimizer!r}; choose adamw or lars")
    if cfg.amp not in ("bf16", "fp16", "fp32"):
        raise ConfigError(f"unknown amp {cfg.amp!r}; choose bf16, fp16 or fp32")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads must be positive, got {cfg.threads}")
    if cfg.log_every < 1 or cfg.ckpt_every < 1:
        raise ConfigError("log_every and ckpt_every must be positive")
    if cfg.snapshot_every < 0:
        raise ConfigError(f"snapshot_every must be 0 (off) or positive, got {cfg.snapshot_every}")
    if cfg.compile_mode not in COMPILE_MODES:
        raise ConfigError(f"unknown compile_mode {cfg.compile_mode!r}; choose none, default or "
                          f"max-autotune-no-cudagraphs (set cuda_graphs=true for CUDA graphs)")
    dev = check_device(cfg.device)
    if d.data_path not in ("auto", "gpu", "cpu"):
        raise ConfigError(f"unknown data.data_path {d.data_path!r}; choose auto, gpu or cpu")
    if d.data_path == "gpu":
        if not dev.startswith("cuda"):
            raise ConfigError("data.data_path=gpu decodes and crops on the GPU and needs a CUDA device; "
                              "use data.data_path=auto or cpu on the CPU")
        if d.dataset not in FOLDER_DATASETS or not isinstance(cfg, PretrainConfig):
            raise ConfigError(f"data.data_path=gpu is for imagefolder/imagenet pretraining (got {cfg.family} on "
                              f"{d.dataset!r}); use data.data_path=auto")
        if d.limit is not None:
            raise ConfigError("data.data_path=gpu reads the whole folder; unset data.limit or use data.data_path=cpu")
    return cfg


def augment_backend(cfg) -> str:
    """The training augmentation a config runs: "batched" for the bundled in-memory sets when the recipe is
    RandomResizedCrop + flip (pretraining; finetuning without RandAugment and random erasing), else "pil";
    ``data.augment`` "pil" or "batched" forces it (``validate`` refuses "batched" where it cannot apply)."""
    d = cfg.data
    if d.augment != "auto":
        return d.augment
    plain = not (isinstance(cfg, FinetuneConfig) and (cfg.randaug or cfg.reprob))
    return "batched" if d.dataset in BATCHED_DATASETS and plain else "pil"


def _hflip(d) -> float | None:
    return d.hflip if d.hflip is not None or d.dataset not in DATASETS else DATASETS[d.dataset].hflip


def check_device(device: str) -> str:
    """The torch device a config's ``device`` names; 'auto' is CUDA when available. Raises for a missing GPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but no CUDA GPU is available; use device=cpu or auto")
        idx = device.partition(":")[2]
        if idx and (not idx.isdigit() or int(idx) >= torch.cuda.device_count()):
            raise ConfigError(f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return device
    raise ConfigError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")
