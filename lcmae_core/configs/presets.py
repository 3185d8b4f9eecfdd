"""The presets: a family's recipe at a scale, built from the scale's record (``lcmae_core.scales``) into the typed
configs of ``configs.schema``; ``build`` adds overrides on top, and ``calibration_candidates`` the attention recipe's
candidates."""

from __future__ import annotations

from .. import scales
from ..data import LABELLED_TWIN
from ..masking import MASK_RATIO
from .schema import (EVAL_FAMILIES, PRETRAIN_FAMILIES, TABLE1_DECODER_DEPTH, DataConfig, FinetuneConfig, LinprobeConfig, ModelConfig,
                     OptimConfig, PretrainConfig, RunConfig, _check_family, apply_overrides, check_scale, validate)


def scale_record(scale: str) -> scales.Scale:
    """The record of a scale (``lcmae_core.scales``), after the one check of its name."""
    return scales.SCALES[check_scale(scale)]


def model_preset(scale: str, family: str = "mae") -> ModelConfig:
    kw = dict(scale_record(scale).model)
    m = ModelConfig.from_size(kw.pop("size"), **kw) if "size" in kw else ModelConfig(**kw)
    if family == "lcmae":
        m.decoder_depth = TABLE1_DECODER_DEPTH
    return m


def data_preset(scale: str) -> DataConfig:
    return DataConfig(**scale_record(scale).data)


def _set(cfg, key: str, value) -> None:
    """Set a dotted key of a config the preset builds (values from the scale record, already typed)."""
    *path, last = key.split(".")
    node = cfg
    for p in path:
        node = getattr(node, p)
    setattr(node, last, value)


def preset(family: str, scale: str = "cpu") -> RunConfig:
    """The recipe of a family at a scale, from the scale's record (``lcmae_core.scales``)."""
    _check_family(family)
    rec = scale_record(scale)
    model = model_preset(scale, family)
    data = data_preset(scale)
    if family in PRETRAIN_FAMILIES:
        cfg = PretrainConfig(family=family, model=model, data=data, optim=OptimConfig(**rec.pretrain_optim[family]),
                             scale=scale, mask_ratio=0.0 if family in ("ae", "simclr") else MASK_RATIO,
                             # the small scales' linear-probe runs measure the same kNN on the same features (the
                             # verdicts read theirs), so the pretraining monitor would be a second copy there
                             knn=rec.knn_monitor)
        # weight snapshots for analyses over training (Sec. 3.2 page)
        cfg.snapshot_every = rec.snapshot_every
    elif family == "finetune":
        data.crop_scale = (0.08, 1.0)  # timm's default RandomResizedCrop scale, as fb/mae finetuning
        cfg = FinetuneConfig(model=model, data=data, optim=OptimConfig(**rec.finetune_optim), scale=scale)
        for key, value in rec.finetune_changes.items():
            _set(cfg, key, value)
    else:  # linprobe: the converged probe on cached features (``train.probe``), or fb/mae's LARS head
        cfg = LinprobeConfig(model=model, data=data, optim=OptimConfig(**rec.linprobe_optim), scale=scale,
                             cache_features=rec.probe == "logreg", probe=rec.probe)
        if rec.linprobe_ckpt_every:  # a cached-feature epoch takes milliseconds, a checkpoint 20 ms (not hashed)
            cfg.ckpt_every = rec.linprobe_ckpt_every
    cfg = labelled_for_classifiers(cfg)
    if rec.threads:
        cfg.threads = rec.threads
    if rec.log_every:
        cfg.log_every = rec.log_every
    return cfg




def labelled_for_classifiers(cfg: RunConfig) -> RunConfig:
    """A classifier (finetune, linprobe) on an unlabelled set trains on its labelled twin (``data.LABELLED_TWIN``: the
    bundled photos -> which photo a crop is from); any other config is returned as it is."""
    twin = LABELLED_TWIN.get(cfg.data.dataset)
    if cfg.family in EVAL_FAMILIES and twin:
        cfg.data.dataset = twin
    return cfg


def build(family: str, scale: str = "cpu", *changes) -> RunConfig:
    """The one "preset + overrides" builder (the CLI, the benchmarks and ``Study`` all use it): the recipe of a
    family at a scale, then each layer of ``changes`` in order (a {key: value} dict or ``key=value`` strings; a
    later layer wins)."""
    cfg = preset(family, scale)
    for layer in changes:
        if layer:
            cfg = apply_overrides(cfg, layer)
    return cfg




# -------------------------------------------------------------------------------------------------------
def calibration_candidates(scale: str = "cpu") -> dict[str, tuple[str, RunConfig]]:
    """{name: (description, config)} of the attention recipe's calibration candidates at a scale (its record's
    ``calibration_candidates`` on ``calibration_base``: the cpu scale's ten; the smoke scale's two tiny ones)."""
    rec = scale_record(scale)
    return {name: (text, validate(build("mae", scale, {**rec.calibration_base, **changes, "progress": False})))
            for name, (text, changes) in rec.calibration_candidates.items()}
