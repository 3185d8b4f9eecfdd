"""Loading facebookresearch/mae checkpoints, safely.

An official ``.pth`` is a dict with the weights under ``"model"`` and, for the checkpoints saved by the
training scripts, an ``argparse.Namespace`` under ``"args"``. We never unpickle arbitrary code: files are read
with ``torch.load(weights_only=True)``, allowing ``argparse.Namespace`` and nothing else.

- A full checkpoint (``mae_pretrain_vit_base_full.pth``, ``mae_visualize_vit_base.pth``) loads every key.
- An encoder-only checkpoint (``mae_pretrain_vit_base.pth``) loads into the encoder; the report says that the
  decoder was left as initialised.
- Any other mismatch (missing encoder keys, unexpected keys, wrong shapes) raises an error that names them.
"""

from __future__ import annotations

import argparse
import os
import re
import zipfile
from dataclasses import dataclass, field

import torch

from .errors import first_line
from .models import OFFICIAL_NAMES, SIZES, MaskedAutoencoderViT
from .models.state import brief as _brief, state_fit

# the official releases, for users with a network
OFFICIAL_URLS = {
    f"mae_{kind}_vit_{size}.pth": f"https://dl.fbaipublicfiles.com/mae/{folder}/mae_{kind}_vit_{size}.pth"
    for size in ("base", "large", "huge")
    for kind, folder in (("pretrain", "pretrain"), ("visualize", "visualize"))
} | {
    f"mae_pretrain_vit_{size}_full.pth": f"https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_{size}_full.pth"
    for size in ("base", "large", "huge")
}

ENCODER_PREFIXES = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.")
DECODER_PREFIXES = ("decoder_", "mask_token")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model; the message names the keys."""


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    decoder_initialised: bool = False
    skipped: list[str] = field(default_factory=list)
    args: dict | None = None

    def __str__(self) -> str:
        s = f"loaded {len(self.loaded)} tensors"
        if self.decoder_initialised:
            s += "; encoder-only checkpoint: the decoder was left as initialised"
        if self.skipped:
            s += f"; ignored {', '.join(self.skipped)}"
        return s


def unreadable(path: str, e: BaseException, fix: str) -> CheckpointError:
    """The one-line error for a checkpoint torch cannot read safely: objects the loader does not trust (a pickle
    that would import code: never unpickled), or an empty, truncated or corrupt file, with ``fix``. torch's own
    advice to retry with ``weights_only=False`` is never repeated: that is the unsafe step."""
    text = str(e)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return CheckpointError(f"{path} holds objects this loader does not trust ({found.group(1)}), so it was not "
                               "read; use a file you trust that holds tensors only (a plain state dict)")
    if "Weights only load failed" in text:
        operand = re.search(r"Unsupported operand \d+", text)
        detail = operand.group(0) if operand else "not a file torch reads safely"
    else:
        detail = first_line(e)
    size = os.path.getsize(path) if os.path.exists(path) else -1
    state = "is empty" if size == 0 else f"cannot be read ({detail})"
    return CheckpointError(f"{path} {state}: it is truncated, corrupt or not a checkpoint; {fix}")


def check_file(path: str | os.PathLike, fix: str = "pass another copy of the file") -> str:
    """A cheap look at a checkpoint before any work: it exists, is not empty, and is a whole zip archive (torch's
    format; its directory sits at the end, so a cut-off copy fails here) or a legacy pickle. CheckpointError (one
    line) otherwise. Reads a few bytes, never the weights."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}; {fix}")
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        raise CheckpointError(f"{path} is empty: it is truncated, corrupt or not a checkpoint; {fix}")
    if head == b"PK" and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} cannot be read (a zip archive without its directory): it is truncated; {fix}")
    if head != b"PK" and head[:1] != b"\x80":
        raise CheckpointError(f"{path} cannot be read (neither a zip archive nor a pickle): it is not a "
                              f"checkpoint; {fix}")
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a ``.pth`` with ``weights_only=True``, allowing ``argparse.Namespace`` (official ``args``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}; pass the path of a .pth file")
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle.UnpicklingError and friends
            raise unreadable(path, e, "pass another copy of the file") from None


def state_dict_of(ckpt: dict) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint: under "model" (fb/mae), "state_dict", "teacher", or the dict itself."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"a checkpoint must be a dict of weights or hold one under 'model'; "
                              f"got {type(ckpt).__name__}")
    for key in ("model", "state_dict", "model_state"):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise CheckpointError(f"no weights found in the checkpoint; its keys are {_brief(ckpt)}")


def _args_dict(ckpt: dict) -> dict | None:
    args = ckpt.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    return args if isinstance(args, dict) else None


def _named_size_with_shapes(cfg: dict) -> dict:
    """The first entry of SIZES whose widths and depths are those inferred in ``cfg`` (decoder ones only when
    ``cfg`` has them); {} when none is."""
    keys = [k for k in ("patch_size", "embed_dim", "depth", "mlp_ratio", "decoder_embed_dim", "decoder_depth")
            if k in cfg]
    for size in SIZES.values():
        full = {"mlp_ratio": 4.0, **size}
        if all(float(full[k]) == float(cfg[k]) for k in keys):
            return dict(size)
    return {}


def infer_mae_config(sd: dict[str, torch.Tensor], args: dict | None = None) -> dict:
    """Constructor arguments of ``MaskedAutoencoderViT`` for an official state dict.

    The size comes from ``args.model`` when the checkpoint names an official factory (or one of ours,
    ``mae_vit_<size>``); otherwise from the shapes, with the head counts of the named size in ``SIZES`` that has
    those shapes, or else the official rule (head width 64, except ViT-H's 16 heads of 80).
    """
    needed = [k for k in ("patch_embed.proj.weight", "pos_embed") if k not in sd]
    if needed:
        raise CheckpointError(f"missing keys: {', '.join(needed)}; is it an MAE checkpoint?")
    name = (args or {}).get("model")
    if name in OFFICIAL_NAMES:
        cfg = dict(SIZES[OFFICIAL_NAMES[name]])
    elif isinstance(name, str) and name.startswith("mae_vit_") and name[len("mae_vit_"):] in SIZES:
        cfg = dict(SIZES[name[len("mae_vit_"):]])  # one of our own factories
    else:
        w = sd["patch_embed.proj.weight"]  # (D, C, p, p)
        D, depth = w.shape[0], len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
        cfg = dict(patch_size=w.shape[-1], embed_dim=D, depth=depth,
                   num_heads={1280: 16}.get(D, max(1, D // 64)))
        if "decoder_embed.weight" in sd:
            Dd = sd["decoder_embed.weight"].shape[0]
            cfg.update(decoder_embed_dim=Dd,
                       decoder_depth=len({k.split(".")[1] for k in sd if k.startswith("decoder_blocks.")}),
                       decoder_num_heads=16 if Dd == 512 else max(1, Dd // 32))
        if "blocks.0.mlp.fc1.weight" in sd:
            cfg["mlp_ratio"] = sd["blocks.0.mlp.fc1.weight"].shape[0] / D
        # shapes cannot tell the head counts: when they are those of a named size, take that size's
        cfg.update(_named_size_with_shapes(cfg))
    w = sd["patch_embed.proj.weight"]
    cfg["in_chans"] = w.shape[1]
    num_patches = sd["pos_embed"].shape[1] - 1
    cfg["img_size"] = int(round(num_patches**0.5)) * w.shape[-1]
    if args and "norm_pix_loss" in args:
        cfg["norm_pix_loss"] = bool(args["norm_pix_loss"])
    return cfg


def load_mae_state_dict(model: MaskedAutoencoderViT, sd: dict[str, torch.Tensor]) -> LoadReport:
    """Load an official MAE state dict (full or encoder-only) into ``model``.

    A full state dict must match key for key (``strict=True``). An encoder-only one must hold every encoder
    key; the decoder stays as initialised. Anything else raises ``CheckpointError`` naming the keys.
    """
    own = model.state_dict()
    sd = {k: v for k, v in sd.items()}
    skipped = [k for k in list(sd) if re.match(r"^(head|fc_norm)\.", k)]  # a classifier's head, if any
    for k in skipped:
        sd.pop(k)
    fit = state_fit(own, sd)
    unexpected, missing, bad = fit.unexpected, fit.missing, fit.shapes
    if unexpected:
        raise CheckpointError(f"unexpected keys in the checkpoint: {_brief(unexpected)}; "
                              "is it an MAE checkpoint of this architecture?")
    encoder_missing = {k for k in missing if not k.startswith(DECODER_PREFIXES)}
    if encoder_missing:
        raise CheckpointError(f"missing keys: {_brief(encoder_missing)}; the checkpoint does not fit this model")
    if bad:
        raise CheckpointError(f"shape mismatch (checkpoint vs model): {'; '.join(bad[:6])}; "
                              "build the model with the checkpoint's size")
    decoder_missing = missing - encoder_missing
    if decoder_missing and any(k.startswith(DECODER_PREFIXES) for k in sd):
        raise CheckpointError(f"missing decoder keys: {_brief(decoder_missing)}; a checkpoint must hold the "
                              "whole decoder (full) or none of it (encoder-only)")
    pos = sd.get("pos_embed")
    if pos is not None and pos.shape == own["pos_embed"].shape:
        fixed = own["pos_embed"]  # MAE's fixed 2-D sin-cos embedding, set at initialisation and never trained
        if not torch.allclose(pos.float().cpu(), fixed.float().cpu(), atol=1e-3):
            raise CheckpointError("its position embeddings are learned, not MAE's fixed 2-D sin-cos ones, so it is not "
                                  "an MAE checkpoint (a DINO or DeiT file? pass those as the dino or deit parameter)")
    decoder_only_missing = bool(missing)
    model.load_state_dict(sd, strict=not decoder_only_missing)
    return LoadReport(loaded=sorted(sd), decoder_initialised=decoder_only_missing, skipped=skipped)


def load_official_mae(path: str | os.PathLike, model: MaskedAutoencoderViT | None = None,
                      **overrides) -> tuple[MaskedAutoencoderViT, LoadReport]:
    """Read an official fb/mae ``.pth`` and load it; build the model from the checkpoint when none is given.

    Returns (model, report); ``report.decoder_initialised`` tells whether the file was encoder-only.
    """
    ckpt = read_checkpoint(path)
    sd = state_dict_of(ckpt)
    args = _args_dict(ckpt)
    if model is None:
        model = MaskedAutoencoderViT(**{**infer_mae_config(sd, args), **overrides})
    try:
        report = load_mae_state_dict(model, sd)
    except CheckpointError as e:
        raise CheckpointError(f"{os.fspath(path)}: {e}") from None
    report.args = args
    return model, report


def download_official(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Download an official checkpoint by file name (see ``OFFICIAL_URLS``) into a cache; needs a network."""
    if name not in OFFICIAL_URLS:
        raise ValueError(f"unknown official checkpoint {name!r}; choose one of {_brief(OFFICIAL_URLS, 20)}")
    cache_dir = os.fspath(cache_dir or os.path.join(torch.hub.get_dir(), "checkpoints"))
    os.makedirs(cache_dir, exist_ok=True)
    dst = os.path.join(cache_dir, name)
    if not os.path.exists(dst):
        torch.hub.download_url_to_file(OFFICIAL_URLS[name], dst, progress=True)  # writes atomically
    return dst
