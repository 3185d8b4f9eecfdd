"""The book's analysis figures, in one style (``STYLE``, applied with ``style()``).

- ``reconstruction_figure``: masked image, reconstruction with the visible patches pasted back, original (the
  official MAE visualisation; norm-pix predictions are denormalised with each target patch's mean and variance).
- ``attention_maps_figure``: Fig. 4 / B.1, decoder attention of chosen mask-token queries across layers: rows =
  queries; columns = input, masked image, one map per layer; the query marked by a red circle and the [CLS] weight
  shown as a small block at the top-left of each map.
- ``attention_distance_figure``: Figs. 5, 6, A.1, attention distance per layer: each head a dot, the mean a line.
- ``layer_curve_figure``: Figs. 2, 3, one value per decoder layer (S^attn, S^sim) for one or more models.
- ``log_curves_figure``: quantities over training read from runs' JSON-lines logs (Table 1's collapse monitors,
  the Eq. 2 / Eq. 4 terms per snapshot), one axes per quantity, one line per run.
- ``identity_sides_figure``: Sec. 3.2, the two sides of Eq. 2 / Eq. 4 against each other, on the diagonal.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, nothing shown);
notebooks display or ``glue`` it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from ..masking import MASK_RATIO, mask_ratio_of, noise_for_mask, random_masks
from .attention import query_attention_maps
from .geometry import expand_mask, grid_size_of, patch_size_of

# one style for every figure of the book
STYLE: dict = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "image.cmap": "viridis",
    "figure.dpi": 150,  # what a notebook shows and the book embeds: a 3.4-inch plot is 510 px wide
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
ATTENTION_CMAP = "viridis"
QUERY_COLOR = "red"
PANEL_INCHES = 1.4  # side of one image panel


@contextlib.contextmanager
def style(**overrides):
    """Context in which figures take the book's style (``STYLE``, plus any rcParams overrides)."""
    with matplotlib.rc_context({**STYLE, **overrides}):
        yield


# ---------------------------------------------------------------------------------------------------------------
# images
def to_display(imgs: torch.Tensor, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> np.ndarray:
    """imgs (B, C, H, W), normalised with per-channel ``mean``/``std`` (None: already in [0, 1]) ->
    (B, H, W, C) float array in [0, 1] for ``imshow``."""
    x = imgs.detach().float().cpu()
    if mean is not None or std is not None:
        C = x.shape[1]
        m = torch.as_tensor(mean if mean is not None else [0.0] * C, dtype=torch.float32).reshape(1, -1, 1, 1)
        s = torch.as_tensor(std if std is not None else [1.0] * C, dtype=torch.float32).reshape(1, -1, 1, 1)
        x = x * s + m
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def show_image(ax, img: np.ndarray) -> None:
    """Show one (H, W, C) image, grey when C == 1, without ticks or grid."""
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img)
    bare_axes(ax)


def bare_axes(ax) -> None:
    """An axes without ticks, grid or frame: the panels around an image."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)


@torch.no_grad()
def reconstruct(model, imgs: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The panels of the MAE visualisation, each (B, C, H, W) in the input's normalisation.

    mask: (L,) or (B, L), 1 = masked. Returns {"original", "masked" (masked patches zeroed), "reconstruction" (the
    prediction everywhere), "pasted" (the prediction at masked patches, the input at visible ones)}. With norm-pix
    the prediction is in per-patch normalised units: it is mapped back with the mean and variance of each target
    patch, ``pred * sqrt(var + 1e-6) + mean``, as the official visualisation does for norm-pix models. A block
    autoencoder's b x b predictions are cut to their centre patch.
    """
    model.eval()
    B, L = imgs.shape[0], model.num_patches
    m = expand_mask(mask, B, L).to(imgs.device)  # (B, L)
    latent, m_out, ids_restore = model.forward_encoder(imgs, mask_ratio_of(m), noise_for_mask(m))
    pred = model.forward_decoder(latent, ids_restore)  # (B, L, P)
    if hasattr(model, "center_patches"):
        pred = model.center_patches(pred)  # (B, L, p*p*C)
    if model.norm_pix_loss:
        target = model.patchify(imgs)  # (B, L, p*p*C)
        mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        pred = pred * (var + 1.0e-6) ** 0.5 + mu
    recon = model.unpatchify(pred)  # (B, C, H, W)
    P = pred.shape[-1]
    m_img = model.unpatchify(m_out.unsqueeze(-1).expand(B, L, P))  # (B, C, H, W), 1 = masked
    return {"original": imgs, "masked": imgs * (1 - m_img), "reconstruction": recon,
            "pasted": imgs * (1 - m_img) + recon * m_img}


def _default_mask(model, batch: int, mask, mask_ratio: float, seed: int) -> torch.Tensor:
    if mask is not None:
        return expand_mask(mask, batch, model.num_patches)
    return random_masks(batch, model.num_patches, mask_ratio, torch.Generator().manual_seed(seed))


def reconstruction_figure(model, imgs: torch.Tensor, mask: torch.Tensor | None = None, mask_ratio: float = MASK_RATIO,
                          seed: int = 0, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                          show_prediction: bool = False) -> Figure:
    """Rows = images; columns = masked image, reconstruction + visible patches, original (+ the raw prediction
    everywhere when ``show_prediction``). mask (L,) or (B, L), or None: a random one per image at ``mask_ratio``
    (``seed``). mean/std: the normalisation of ``imgs`` to undo for display."""
    dev = next(model.parameters()).device
    imgs = imgs.to(dev)
    m = _default_mask(model, imgs.shape[0], mask, mask_ratio, seed).to(dev)
    panels = reconstruct(model, imgs, m)
    cols = [("masked", "masked"), ("pasted", "reconstruction + visible"), ("original", "original")]
    if show_prediction:
        cols.insert(2, ("reconstruction", "prediction"))
    shown = {k: to_display(panels[k], mean, std) for k, _ in cols}
    B = imgs.shape[0]
    with style():
        fig = Figure(figsize=(PANEL_INCHES * len(cols), PANEL_INCHES * B), layout="constrained")
        axes = fig.subplots(B, len(cols), squeeze=False)
        for b in range(B):
            for c, (key, title) in enumerate(cols):
                show_image(axes[b, c], shown[key][b])
                if b == 0:
                    axes[b, c].set_title(title)
        fig.suptitle(f"mask ratio {float(m[0].mean()):.2f}")
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Fig. 4 / B.1
def attention_maps_figure(model, imgs: torch.Tensor, mask: torch.Tensor, queries, layers: Sequence[int] | None = None,
                          head: int | str = "mean", mean: Sequence[float] | None = None,
                          std: Sequence[float] | None = None) -> Figure:
    """Fig. 4 / B.1: decoder attention maps of mask-token queries across layers.

    imgs (B, C, H, W); mask (L,) or (B, L), 1 = masked; queries (Q, 2) rows of (image index, grid position), each
    a masked position; layers: 0-based decoder blocks (default all; the paper shows 1, 2, 3, 5, 8 of 8, i.e.
    ``[0, 1, 2, 4, 7]``). head: "mean" over heads, or a head index. Rows = queries; columns = input, masked image,
    one map per layer (titled 1-based). Each map shows the query's attention over the patch grid, coloured from 0
    to the map's maximum, with the [CLS] weight as a block at the top-left (same colour scale) and the query
    circled in red.
    """
    dev = next(model.parameters()).device
    imgs = imgs.to(dev)
    B = imgs.shape[0]
    m = expand_mask(mask, B, model.num_patches).to(dev)
    q = torch.as_tensor(queries, dtype=torch.long).reshape(-1, 2)
    visible = [tuple(r) for r in q.tolist() if r[0] < B and r[1] < m.shape[1] and m[r[0], r[1]] == 0]
    if visible:
        raise ValueError(f"queries {visible} are visible positions; Fig. 4 queries must be masked (mask == 1)")
    layers = list(range(len(model.decoder_blocks))) if layers is None else list(layers)
    maps = query_attention_maps(model, imgs, m, q, layers)  # (Q, layers, H, 1 + L)
    if head == "mean":
        maps = maps.mean(2)  # (Q, layers, 1 + L)
    elif isinstance(head, int) and 0 <= head < maps.shape[2]:
        maps = maps[:, :, head]
    else:
        raise ValueError(f"head must be 'mean' or an index in [0, {maps.shape[2]}), got {head!r}")
    maps = maps.cpu()
    p, (gh, gw) = patch_size_of(model), grid_size_of(model)
    H, W = gh * p, gw * p
    panels = reconstruct(model, imgs, m)
    original, masked = to_display(panels["original"], mean, std), to_display(panels["masked"], mean, std)
    Q, ncol = q.shape[0], 2 + len(layers)
    cmap = matplotlib.colormaps[ATTENTION_CMAP]
    with style():
        fig = Figure(figsize=(PANEL_INCHES * ncol, PANEL_INCHES * Q), layout="constrained")
        axes = fig.subplots(Q, ncol, squeeze=False)
        for r, (b, pos) in enumerate(q.tolist()):
            cy, cx = (pos // gw + 0.5) * p, (pos % gw + 0.5) * p  # the query's centre, pixels
            show_image(axes[r, 0], original[b])
            show_image(axes[r, 1], masked[b])
            axes[r, 1].add_patch(Circle((cx - 0.5, cy - 0.5), 0.45 * p, fill=False, color=QUERY_COLOR, lw=1.5))
            for c, l in enumerate(layers):
                ax = axes[r, 2 + c]
                a = maps[r, c]  # (1 + L,): [CLS, grid]
                grid = a[1:].reshape(gh, gw).numpy()
                vmax = max(float(a.max()), 1e-12)
                ax.imshow(grid, cmap=cmap, vmin=0, vmax=vmax, extent=(-0.5, W - 0.5, H - 0.5, -0.5),
                          interpolation="nearest")
                side = max(p, W // 8)  # the [CLS] block at the top-left
                ax.add_patch(Rectangle((-0.5, -0.5), side, side, facecolor=cmap(float(a[0]) / vmax),
                                       edgecolor="white", lw=1.0))
                ax.add_patch(Circle((cx - 0.5, cy - 0.5), 0.45 * p, fill=False, color=QUERY_COLOR, lw=1.5))
                bare_axes(ax)
                if r == 0:
                    ax.set_title(f"layer {l + 1}")
            if r == 0:
                axes[r, 0].set_title("input")
                axes[r, 1].set_title("masked")
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Figs. 5, 6, A.1 and Figs. 2, 3
def _as_array(v) -> np.ndarray:
    return v.detach().float().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=float)


def attention_distance_figure(curves: Mapping[str, torch.Tensor], overlay: bool = False, title: str | None = None,
                              ylabel: str = "attention distance (pixels)", panel_width: float = 2.4) -> Figure:
    """Figs. 5, 6, A.1: attention distance per layer for several models.

    curves: name -> (layers, heads) from ``attention_distance_curves``. Each head is a dot, the mean over heads a
    line. overlay=False: one axes per model, side by side with a shared y axis (Fig. 5 / A.1 style);
    overlay=True: all models on one axes (Fig. 6, mask ratios), one colour each. Layers are numbered from 1.
    """
    if not curves:
        raise ValueError("no curves to plot; pass {name: (layers, heads) tensor}")
    arrays = {k: _as_array(v) for k, v in curves.items()}
    bad = [k for k, v in arrays.items() if v.ndim != 2]
    if bad:
        raise ValueError(f"curves {bad} are not (layers, heads); use attention_distance_curves")
    n = 1 if overlay else len(arrays)
    with style():
        fig = Figure(figsize=(panel_width * n + 0.6, 2.6), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
        for i, (name, d) in enumerate(arrays.items()):
            ax = axes[0 if overlay else i]
            color = COLORS[i % len(COLORS)]
            layers = np.arange(1, d.shape[0] + 1)
            ax.scatter(np.repeat(layers, d.shape[1]), d.reshape(-1), s=8, alpha=0.45, color=color, linewidths=0)
            ax.plot(layers, d.mean(1), color=color, marker="o", label=name)
            ax.set_xlabel("layer")
            ax.set_xticks(layers if len(layers) <= 12 else layers[::2])
            if not overlay:
                ax.set_title(name)
        axes[0].set_ylabel(ylabel)
        if overlay:
            axes[0].legend(frameon=False)
        if title:
            fig.suptitle(title)
    return fig


def layer_curve_figure(curves: Mapping[str, torch.Tensor], ylabel: str, title: str | None = None) -> Figure:
    """Figs. 2, 3: one value per decoder layer (S^attn of Eq. 7, S^sim of Eq. 8), one line per model, one axes.

    A curve is (layers,), or (seeds, layers): then the line is the mean over seeds and the band their range."""
    if not curves:
        raise ValueError("no curves to plot; pass {name: (layers,) tensor}")
    with style():
        fig = Figure(figsize=(3.4, 2.6), layout="constrained")
        ax = fig.subplots()
        for i, (name, v) in enumerate(curves.items()):
            v = np.atleast_2d(_as_array(v))
            v = v.reshape(-1, v.shape[-1])
            layers = np.arange(1, v.shape[1] + 1)
            color = COLORS[i % len(COLORS)]
            ax.plot(layers, v.mean(0), color=color, marker="o", label=name)
            if v.shape[0] > 1:
                ax.fill_between(layers, v.min(0), v.max(0), color=color, alpha=0.2, linewidth=0)
            ax.set_xticks(layers)
        ax.set_xlabel("decoder layer")
        ax.set_ylabel(ylabel)
        if len(curves) > 1:
            ax.legend(frameon=False)
        if title:
            ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Table 1 collapse monitors, Sec. 3.2 terms
def log_curves_figure(logs: Mapping[str, Sequence[Mapping]], keys: Mapping[str, str], x: str = "epoch_frac",
                      xlabel: str = "epoch", event: str | None = "train", logy: bool = False,
                      references: Mapping[str, float] | None = None, title: str | None = None) -> Figure:
    """Quantities over training, e.g. the collapse monitors of Table 1's settings.

    logs: run name -> log records (``Run.read_log()``, or any list of dicts); keys: record key -> axis label, one
    axes per key; one line per run, in the same colour on every axes. Records of another ``event`` (None: any) or
    without the key are skipped. references: key -> a value drawn as a dashed grey line (e.g. 1/sqrt(D)).
    """
    if not logs or not keys:
        raise ValueError("nothing to plot; pass {run name: log records} and {key: label}")
    with style():
        fig = Figure(figsize=(2.6 * len(keys) + 0.6, 2.6), layout="constrained")
        axes = fig.subplots(1, len(keys), squeeze=False)[0]
        for ax, (key, label) in zip(axes, keys.items()):
            for i, (name, records) in enumerate(logs.items()):
                pts = [(r[x], r[key]) for r in records
                       if (event is None or r.get("event") == event) and key in r and x in r]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, color=COLORS[i % len(COLORS)], marker="o" if len(pts) < 16 else None,
                            label=name)
            if references and key in references:
                ax.axhline(references[key], color="0.5", linestyle="--", linewidth=1)
            if logy:
                ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
        handles, labels = axes[0].get_legend_handles_labels()
        if len(labels) > 1:
            fig.legend(handles, labels, loc="outside right center", frameon=False)
        if title:
            fig.suptitle(title)
    return fig


def identity_sides_figure(sides: Mapping[str, Mapping[str, torch.Tensor]], max_points: int = 2000) -> Figure:
    """Sec. 3.2: left against right side of an identity, one axes per identity, with the diagonal y = x.

    sides: name -> a dict with "lhs" and "rhs" tensors of the same shape (``eq2_sides`` / ``eq4_sides``).
    """
    if not sides:
        raise ValueError("nothing to plot; pass {name: eq2_sides(...) or eq4_sides(...)}")
    with style():
        fig = Figure(figsize=(2.6 * len(sides) + 0.4, 2.6), layout="constrained")
        axes = fig.subplots(1, len(sides), squeeze=False)[0]
        for i, (ax, (name, d)) in enumerate(zip(axes, sides.items())):
            lhs, rhs = _as_array(d["lhs"]).reshape(-1)[:max_points], _as_array(d["rhs"]).reshape(-1)[:max_points]
            lo, hi = float(min(lhs.min(), rhs.min())), float(max(lhs.max(), rhs.max()))
            ax.plot([lo, hi], [lo, hi], color="0.5", linestyle="--", linewidth=1)
            ax.scatter(lhs, rhs, s=8, alpha=0.5, color=COLORS[i % len(COLORS)], linewidths=0)
            ax.set_xlabel("left side")
            ax.set_ylabel("right side")
            ax.set_title(name)
    return fig


__all__ = ["STYLE", "COLORS", "style", "to_display", "show_image", "bare_axes", "reconstruct", "reconstruction_figure",
           "attention_maps_figure", "attention_distance_figure", "layer_curve_figure", "log_curves_figure",
           "identity_sides_figure"]
