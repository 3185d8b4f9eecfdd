"""Loaders for the models the analyses compare (Sec. 4, Figs. 3, 5, 6, A.1): official MAE, DINO, DeiT, our runs.

Every file is read with ``torch.load(weights_only=True)`` (``.safetensors`` with safetensors); nothing is
unpickled beyond tensors, containers and, for fb/mae files, ``argparse.Namespace``. A key that is missing,
unexpected or of the wrong shape raises ``CheckpointError`` naming it.

- **Official MAE** (facebookresearch/mae): ``mae_pretrain_vit_{base,large,huge}.pth`` (encoder only),
  ``..._full.pth`` and ``mae_visualize_vit_{base,large}.pth``: ``load_mae`` (wraps
  ``lcmae_core.pretrained.load_official_mae``). ``mae_encoder_as_vit`` puts an MAE encoder into a timm
  ``VisionTransformer`` so that it is analysed by the same code as DINO and DeiT.
- **DINO ViT-B/16** (``vit_base_patch16_224.dino``) and **DeiT-B** (``deit_base_patch16_224``): ``load_dino`` /
  ``load_deit`` take a timm name (needs a network), a URL (downloaded to a cache dir), or a local file in either
  format: timm's state dict, or the hub/official one (``dino_vitbase16_pretrain.pth``: keys ``cls_token``,
  ``pos_embed``, ``patch_embed.proj.weight``, ``blocks.0.attn.qkv.weight``, ..., ``norm.weight``, no head), possibly
  inside a full DINO training checkpoint (``{"teacher": {"backbone.blocks...", "head.mlp...": ...}}``, with
  ``module.`` prefixes under DDP). The teacher is preferred; the DINO projection head is dropped.
- **This project's runs**: ``load_run`` reads the checkpoints the training engine writes (``RUN_FORMAT``: the
  weights, the run config and the class count, from which ``train.checkpoint.model_spec`` rebuilds the model), and
  nothing else: every pretraining family, and the finetune and linprobe classifiers (timm ``VisionTransformer``).

Which reference at which scale (Eq. 8, Fig. 3; Fig. 5): at paper scale DINO ViT-B/16 and DeiT-B from here; at
cpu/gpu scale there is no DINO of the right patch grid, so the reference is a model trained by this project (its
finetuned ViT or its MAE encoder, loaded with ``load_run``); ``lcmae_core.analysis.semantic_similarity_curve``
takes either. ``load_decoder_mae`` and ``load_semantic_reference`` read Figs. 2-4's official MAE and Eq. 8's DINO
from files; ``lcmae_core.pages`` picks them, or this project's runs, by scale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping

import timm
import torch
import torch.nn as nn
from safetensors.torch import load_file
from timm.models.vision_transformer import VisionTransformer

from .models import MaskedAutoencoderViT, build_from_kwargs
from .models.state import brief as _brief, state_fit
from .errors import first_line
from .train import checkpoint as ckpt_io
from .train.trainer import seed_all
from .pretrained import OFFICIAL_URLS, CheckpointError, LoadReport, load_official_mae, read_checkpoint

# timm names of the paper's reference models
DINO_TIMM = "vit_base_patch16_224.dino"
DEIT_TIMM = "deit_base_patch16_224"
# the official releases (hub format), for users with a network
REFERENCE_URLS = {
    "dino_vitbase16_pretrain.pth":
        "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
    "dino_vitbase16_full_checkpoint.pth":
        "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain_full_checkpoint.pth",
    "deit_base_patch16_224-b5f2ef4d.pth": "https://dl.fbaipublicfiles.com/deit/deit_base_patch16_224-b5f2ef4d.pth",
}
# the released files each page can read, by what they hold, under their official names (the first found wins; the
# batch's --checkpoints folder is searched for them)
MAE_DECODER_FILES = ("mae_visualize_vit_base.pth", "mae_pretrain_vit_base_full.pth")  # the decoder included
MAE_ENCODER_FILES = ("mae_pretrain_vit_base.pth", "mae_pretrain_vit_base_full.pth", *MAE_DECODER_FILES)
DINO_FILES = ("dino_vitbase16_pretrain.pth", "dino_vitbase16_full_checkpoint.pth",
              "dino_vitbase16_pretrain_full_checkpoint.pth")
DEIT_FILES = ("deit_base_patch16_224-b5f2ef4d.pth", "deit_base_patch16_224.pth")
# DINO's projection head (DINOHead) inside a full training checkpoint
_DINO_HEAD = re.compile(r"^head\.(mlp|last_layer|bn|norm)")
_WRAPPERS = ("module.", "backbone.", "_orig_mod.")  # DDP, DINO's MultiCropWrapper, torch.compile


# ---------------------------------------------------------------------------------------------------------------
# sources: files, URLs, caches
def default_cache_dir() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def download(url: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Download ``url`` into ``cache_dir`` (default: torch hub's checkpoint dir) once; returns the local path."""
    cache_dir = os.fspath(cache_dir or default_cache_dir())
    os.makedirs(cache_dir, exist_ok=True)
    dst = os.path.join(cache_dir, os.path.basename(url.split("?")[0]))
    if not os.path.exists(dst):
        try:
            torch.hub.download_url_to_file(url, dst, progress=True)  # writes atomically
        except Exception as e:  # no network, 404, ...
            raise RuntimeError(f"cannot download {url}: {e}; without a network, pass a local file instead") from e
    return dst


def file_record(source) -> dict:
    """What a page records of a checkpoint it read: {"file", "sha256"} for a file (a cached download included),
    {"name"} for a timm name."""
    path = os.fspath(source)
    if not os.path.isfile(path):
        cached = os.path.join(default_cache_dir(), os.path.basename(path.split("?")[0]))
        if not os.path.isfile(cached):
            return {"name": path}
        path = cached
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"file": os.path.basename(path), "sha256": h.hexdigest()}


def _is_url(source) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def read_weights(path: str | os.PathLike) -> dict:
    """A checkpoint as a dict: ``.safetensors`` with safetensors, anything else with ``weights_only=True``."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint at {path}; pass the path of a .safetensors file")
        return load_file(path)
    return read_checkpoint(path)


# ---------------------------------------------------------------------------------------------------------------
# ViT state dicts (timm, DINO hub, DeiT)
def vit_state_dict(ckpt: Mapping, prefer: str = "teacher") -> dict[str, torch.Tensor]:
    """The backbone weights of a ViT checkpoint in timm or hub format, keys as timm names them.

    Unwraps ``teacher``/``student`` (``prefer`` first), ``model``, ``state_dict``, ``model_state``; strips the
    ``module.``/``backbone.``/``_orig_mod.`` prefixes; drops DINO's projection head (``head.mlp.*``,
    ``head.last_layer.*``). A classifier head (``head.weight``/``head.bias``) is kept.
    """
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"a checkpoint must be a dict; got {type(ckpt).__name__}")
    other = "student" if prefer == "teacher" else "teacher"
    for key in (prefer, other, "model", "state_dict", "model_state", "model_ema"):
        if isinstance(ckpt.get(key), Mapping):
            ckpt = ckpt[key]
            break
    sd = {}
    for k, v in ckpt.items():
        if not isinstance(v, torch.Tensor):
            continue
        changed = True
        while changed:
            changed = False
            for w in _WRAPPERS:
                if k.startswith(w):
                    k, changed = k[len(w):], True
        if _DINO_HEAD.match(k):
            continue
        sd[k] = v
    if not sd:
        raise CheckpointError(f"no weights found in the checkpoint; its keys are {_brief(ckpt)}")
    return sd


def vit_kwargs_from_state_dict(sd: Mapping[str, torch.Tensor], num_heads: int | None = None) -> dict:
    """timm ``VisionTransformer`` arguments from a ViT state dict's shapes (square grid, one CLS token).

    The head count is not in the shapes: ``num_heads`` when given, else head width 64 (ViT-B/L, DINO, DeiT-B)."""
    needed = [k for k in ("patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight") if k not in sd]
    if needed:
        raise CheckpointError(f"missing keys: {', '.join(needed)}; is it a ViT checkpoint?")
    w = sd["patch_embed.proj.weight"]  # (D, C, p, p)
    D, C, p = w.shape[0], w.shape[1], w.shape[-1]
    prefix = 1 if "cls_token" in sd else 0
    n = sd["pos_embed"].shape[1] - prefix
    g = int(round(n ** 0.5))
    if g * g != n:
        raise CheckpointError(f"pos_embed has {n} patch positions, not a square grid; build the model yourself")
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    kw = dict(img_size=g * p, patch_size=p, in_chans=C, embed_dim=D, depth=depth,
              num_heads=num_heads or max(1, D // 64), mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / D,
              qkv_bias="blocks.0.attn.qkv.bias" in sd, class_token=bool(prefix),
              global_pool="token" if prefix else "avg",
              num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0)
    return kw


def load_vit_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> LoadReport:
    """Load a ViT state dict into a timm ``VisionTransformer``, strictly; errors name the keys.

    A classifier head in the file that the model lacks (``num_classes=0``) is skipped and reported."""
    own = model.state_dict()
    sd = dict(sd)
    skipped = []
    if not any(k.startswith("head.") for k in own):
        skipped = [k for k in sd if k.startswith("head.")]
        for k in skipped:
            sd.pop(k)
    fit = state_fit(own, sd)
    unexpected, missing, bad = fit.unexpected, fit.missing, fit.shapes
    if unexpected or missing:
        parts = ([f"unexpected keys: {_brief(unexpected)}"] if unexpected else []) + \
                ([f"missing keys: {_brief(missing)}"] if missing else [])
        raise CheckpointError(f"{'; '.join(parts)}; the checkpoint does not fit this ViT (check the architecture "
                              "or the file format)")
    if bad:
        raise CheckpointError(f"shape mismatch (checkpoint vs model): {'; '.join(bad[:6])}; build the model with "
                              "the checkpoint's size")
    model.load_state_dict(sd, strict=True)
    return LoadReport(loaded=sorted(sd), skipped=skipped)


def load_timm_vit(source: str | os.PathLike, arch: str | None = None, cache_dir: str | os.PathLike | None = None,
                  num_heads: int | None = None, param: str = "", **kwargs) -> nn.Module:
    """A timm ``VisionTransformer`` from a timm name, a URL, or a local file (timm or hub format), in eval mode.

    source: an existing file -> read it (weights_only=True) and build ``arch`` (timm name, pretrained=False) or,
    with arch None, a ViT of the file's shapes (``num_heads`` default: head width 64); a URL -> downloaded into
    ``cache_dir``, then as a file; otherwise a timm model name, created with ``pretrained=True`` (needs a network).
    kwargs go to ``timm.create_model``. ``model.load_report`` tells what was loaded and skipped.
    """
    hint = f"pass a local file as the {param} parameter (-p {param} FILE)" if param else "pass a local checkpoint file"
    cached = os.path.join(os.fspath(cache_dir or default_cache_dir()), os.path.basename(os.fspath(source)))
    if not os.path.isfile(os.fspath(source)) and os.path.isfile(cached):  # torch's checkpoint cache, as load_mae
        source = cached
    elif os.fspath(source) in REFERENCE_URLS:  # an official release by file name: downloaded once, given a network
        try:
            source = download(REFERENCE_URLS[os.fspath(source)], cache_dir)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; {hint}") from None
    if _is_url(source):
        source = download(source, cache_dir)
    if os.path.isfile(os.fspath(source)):
        sd = vit_state_dict(read_weights(source))
        if arch is None:
            model = VisionTransformer(**{**vit_kwargs_from_state_dict(sd, num_heads), **kwargs})
        else:
            kwargs.setdefault("num_classes", sd["head.weight"].shape[0] if "head.weight" in sd else 0)
            if num_heads is not None:
                kwargs["num_heads"] = num_heads
            model = timm.create_model(arch, pretrained=False, **kwargs)
        model.load_report = load_vit_state_dict(model, sd)
        return model.eval()
    if os.sep in os.fspath(source) or os.fspath(source).endswith((".pth", ".pt", ".safetensors")):
        raise FileNotFoundError(f"no checkpoint at {source} (nor in {os.path.dirname(cached)}); {hint}, a URL or a "
                                "timm model name")
    if num_heads is not None:
        kwargs["num_heads"] = num_heads
    try:
        model = timm.create_model(os.fspath(source), pretrained=True, cache_dir=cache_dir, **kwargs)
    except Exception as e:
        raise RuntimeError(f"cannot create timm model {source!r} with pretrained weights ({type(e).__name__}: "
                           f"{first_line(e)}); without a network, {hint}") from e
    model.load_report = LoadReport(loaded=sorted(model.state_dict()))
    return model.eval()


def load_dino(source: str | os.PathLike = DINO_TIMM, cache_dir: str | os.PathLike | None = None,
              **kwargs) -> nn.Module:
    """DINO ViT-B/16, the reference of Eq. 8 / Fig. 3 and a curve of Fig. 5, as a timm ViT without a head.

    source: ``"vit_base_patch16_224.dino"`` (timm, needs a network), a URL, or a local file in timm or hub format
    (``dino_vitbase16_pretrain.pth``, or a full training checkpoint, whose teacher backbone is used)."""
    kwargs.setdefault("param", "dino")  # a file's architecture comes from its shapes (ViT-B/16 for the release)
    return load_timm_vit(source, cache_dir=cache_dir, **kwargs)


def load_deit(source: str | os.PathLike = DEIT_TIMM, cache_dir: str | os.PathLike | None = None,
              **kwargs) -> nn.Module:
    """DeiT-B (supervised, ``deit_base_patch16_224``), a curve of Fig. 5, as a timm ViT (with its classifier head
    when the file has one). source: a timm name (needs a network), a URL, or a local file (timm or official DeiT
    ``{"model": ...}`` format)."""
    kwargs.setdefault("param", "deit")
    return load_timm_vit(source, cache_dir=cache_dir, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# official MAE
def load_mae(source: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
             **overrides) -> tuple[MaskedAutoencoderViT, LoadReport]:
    """An official fb/mae checkpoint as a ``MaskedAutoencoderViT`` (eval mode) and its load report.

    source: a file name of ``lcmae_core.pretrained.OFFICIAL_URLS`` (``mae_pretrain_vit_base.pth``,
    ``mae_pretrain_vit_base_full.pth``, ``mae_visualize_vit_base.pth``, large, huge: downloaded to ``cache_dir``
    unless a file of that name exists), a URL, or a local path. ``report.decoder_initialised`` is True for the
    encoder-only files, whose decoder is random: use them for encoder analyses only."""
    path = os.fspath(source)
    if not os.path.isfile(path):
        if _is_url(path):
            path = download(path, cache_dir)
        elif path in OFFICIAL_URLS:  # fb/mae's release, by file name: a one-line error without a network
            path = download(OFFICIAL_URLS[path], cache_dir)
        else:
            raise FileNotFoundError(f"no checkpoint at {path}; pass a file, a URL, or one of "
                                    f"{_brief(OFFICIAL_URLS, 12)}")
    model, report = load_official_mae(path, **overrides)
    return model.eval(), report


def mae_encoder_as_vit(source: MaskedAutoencoderViT | str | os.PathLike,
                       cache_dir: str | os.PathLike | None = None) -> nn.Module:
    """An MAE encoder (a model, or any ``load_mae`` source) as a timm ``VisionTransformer`` without a head.

    The encoder keys (``cls_token``, ``pos_embed``, ``patch_embed.*``, ``blocks.*``, ``norm.*``) are the same in
    both; ``vit.forward_features(imgs)`` equals the MAE's ``forward_encoder`` at mask ratio 0 with the tokens in
    image order. Lets encoder analyses (Fig. 5) treat MAE, DINO and DeiT alike."""
    mae = source if isinstance(source, MaskedAutoencoderViT) else load_mae(source, cache_dir)[0]
    enc = {k: v for k, v in mae.state_dict().items()
           if k in ("cls_token", "pos_embed") or k.startswith(("patch_embed.", "blocks.", "norm."))}
    kw = vit_kwargs_from_state_dict(enc, num_heads=mae.blocks[0].attn.num_heads)
    vit = VisionTransformer(**kw)  # timm's LayerNorm; the eps is copied from the MAE below
    for m_vit, m_mae in ((vit.norm, mae.norm), *((b.norm1, a.norm1) for b, a in zip(vit.blocks, mae.blocks)),
                         *((b.norm2, a.norm2) for b, a in zip(vit.blocks, mae.blocks))):
        m_vit.eps = m_mae.eps
    vit.load_report = load_vit_state_dict(vit, enc)
    return vit.eval()


# ---------------------------------------------------------------------------------------------------------------
# this project's runs
RUN_FORMAT = ckpt_io.RECORD_FORMAT


def _read_run_checkpoint(path: str) -> dict:
    """A run checkpoint's dict, read with ``weights_only``, or a one-line error naming the file and the fix."""
    try:
        ckpt = ckpt_io.load(path)  # missing or unreadable: one line naming the file it wanted and the fix
    except CheckpointError as e:
        if "argparse.Namespace" in str(e):  # what facebookresearch/mae's released files hold beside the weights
            raise CheckpointError(f"{e}; it is not a run checkpoint of this project: a facebookresearch/mae release "
                                  "(which holds an argparse.Namespace) loads with reference_models.load_mae, or on a "
                                  "page as mae_checkpoint") from None
        raise
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or not isinstance(ckpt.get("config"),
                                                                                                 dict):
        got = _brief(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a run checkpoint (got {got}); expected {RUN_FORMAT}")
    return ckpt


def _build_from_checkpoint(ckpt: dict, path: str) -> tuple[str, nn.Module]:
    """(family, the randomly initialised model the checkpoint's record describes)."""
    try:
        family, kwargs = ckpt_io.model_spec(ckpt)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    try:
        return family, build_from_kwargs(family, kwargs)
    except TypeError as e:
        raise CheckpointError(f"{path}: the model kwargs do not fit the {family} model: {e}") from None


def load_run(path: str | os.PathLike, strict: bool = True) -> tuple[nn.Module, dict]:
    """A model trained by this project from its checkpoint (or weight snapshot) file, in eval mode, and the
    checkpoint's ``config`` (the run config: ``config["family"]`` names the family).

    The file must be ``RUN_FORMAT``: the model is rebuilt from the run config and the class count
    (``train.checkpoint.model_spec``: ``FAMILIES[family]`` for the pretraining families, a timm
    ``VisionTransformer`` for the finetune / linprobe classifiers, the Eq. 8 / Fig. 5 reference at cpu/gpu scale),
    and its weights loaded with ``strict`` (errors name missing/unexpected keys and shape mismatches). Other keys of
    the file (optimizer, rng) are ignored.
    """
    path = os.fspath(path)
    ckpt = _read_run_checkpoint(path)
    family, model = _build_from_checkpoint(ckpt, path)
    sd = ckpt["model"]
    fit = state_fit(model.state_dict(), sd)
    unexpected, missing, bad = fit.unexpected, fit.missing, fit.shapes
    if strict and (unexpected or missing):
        parts = ([f"unexpected keys: {_brief(unexpected)}"] if unexpected else []) + \
                ([f"missing keys: {_brief(missing)}"] if missing else [])
        raise CheckpointError(f"{'; '.join(parts)}; the weights do not fit the {family} model of the config")
    if bad:
        raise CheckpointError(f"shape mismatch (checkpoint vs config's model): {'; '.join(bad[:6])}")
    model.load_state_dict(sd, strict=strict)
    return model.eval(), ckpt["config"]


def load_run_init(run_dir: str | os.PathLike) -> nn.Module:
    """The model of one of this project's runs **at its initialisation**, in eval mode: the same shape and the same
    seed, before any training step. It is the random-init null control of every mechanistic claim, paired with the
    trained model by seed.

    The training engine seeds every generator with the run's seed and then builds the model before anything else
    draws from them (``runs.train_run``), so the rebuild reproduces the initial weights exactly (the pretraining
    runs' ``snapshot-epoch0.pt``, where kept, holds the same tensors). The classifier runs' heads are initialised
    after loading the encoder; the body of a random-init classifier is exact, its head is not used here.
    """
    run_dir = os.fspath(run_dir)
    with open(os.path.join(run_dir, "config.json")) as f:  # the run store's record: every run folder has it
        seed = int(json.load(f).get("seed", 0))
    path = os.path.join(run_dir, "checkpoint.pt")
    ckpt = _read_run_checkpoint(path)
    seed_all(seed)
    return _build_from_checkpoint(ckpt, path)[1].eval()


# ---------------------------------------------------------------------------------------------------------------
# the models of Sec. 4.1 (Figs. 2-4), by scale
def vit_description(model: nn.Module) -> str:
    """A short, deterministic description of a ViT or MAE's shape: "ViT dim D depth d patch p on S px"."""
    p = model.patch_embed.patch_size
    p = int(p[0] if isinstance(p, (tuple, list)) else p)
    size = model.patch_embed.img_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    return f"ViT dim {model.pos_embed.shape[-1]} depth {len(model.blocks)} patch {p} on {size} px"


def load_decoder_mae(checkpoint: str | os.PathLike, cache_dir: str | os.PathLike | None = None
                     ) -> tuple[MaskedAutoencoderViT, str]:
    """An official fb/mae checkpoint **with its decoder**, for Figs. 2-4, and a description: (model, text).

    checkpoint: ``mae_visualize_vit_base.pth`` or a ``*_full.pth`` file (a file name of ``OFFICIAL_URLS``, a URL or
    a path), loaded with ``load_mae``; an encoder-only file is refused with the files to use instead."""
    model, report = load_mae(checkpoint, cache_dir)
    if report.decoder_initialised:
        raise CheckpointError(f"{os.path.basename(os.fspath(checkpoint))} holds only the encoder; Figs. 2-4 "
                              "analyse the decoder: use mae_visualize_vit_base.pth or a *_full.pth file")
    text = (f"official fb/mae checkpoint {os.path.basename(os.fspath(checkpoint))} "
            f"({vit_description(model)}, decoder transformer x{len(model.decoder_blocks)})")
    return model.eval(), text


def load_semantic_reference(source: str | os.PathLike = DINO_TIMM, cache_dir: str | os.PathLike | None = None,
                            **dino_kwargs) -> tuple[nn.Module, str]:
    """Eq. 8's reference at the paper's scale, DINO as ``load_dino`` takes it (a timm name, a URL or a local file),
    and a description: (model in eval mode, text). Below the paper's scale the reference is a run of this project
    (``lcmae_core.pages.semantic_references``)."""
    model = load_dino(source, cache_dir=cache_dir, **dino_kwargs)
    return model.eval(), f"DINO {os.path.basename(os.fspath(source))} ({vit_description(model)})"


__all__ = ["DINO_TIMM", "DEIT_TIMM", "REFERENCE_URLS", "RUN_FORMAT", "download", "read_weights", "vit_state_dict",
           "vit_kwargs_from_state_dict", "load_vit_state_dict", "load_timm_vit", "load_dino", "load_deit",
           "load_mae", "mae_encoder_as_vit", "load_run", "load_run_init",
           "CheckpointError",
           "vit_description", "load_decoder_mae", "load_semantic_reference"]
