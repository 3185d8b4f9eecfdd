"""The interactive explorer of the book: drag the mask ratio and watch an MAE respond.

``Explorer(model, images)`` builds an ipywidgets panel with

- a mask-ratio slider, an image picker, a query picker (which masked patch to follow), and layer and head
  pickers for the decoder;
- one figure: the masked image with the query circled, the reconstruction (visible patches pasted back), the
  decoder's attention map for the query at the chosen layer and head (the [CLS] key's weight in its title),
  and the encoder's attention distance per layer for this image and mask.

In JupyterLab the controls are live. In the static book the panel is rendered from the widget state frozen at
execution, so the sliders and the figure appear as they were left.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .attention import query_attention_maps
from .geometry import grid_size_of, patch_size_of
from .distance import attention_distance_curves
from .viz import ATTENTION_CMAP, COLORS, QUERY_COLOR, bare_axes, show_image, reconstruct, style, to_display
from ..errors import first_line
from ..masking import masking_from_noise, num_visible

RATIO_STEP = 0.05


def _index(name: str, value, n: int, low: int = 0, extra: str = "") -> None:
    """``value`` must be an integer in [low, n); a one-line ``ValueError`` naming the range otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value < n:
        raise ValueError(f"{name} must be an integer from {low} to {n - 1}{extra}, got {value!r}")


class Explorer:
    """The explorer's state and its rendering; ``widget`` is the ipywidgets panel.

    model: a trained ``MaskedAutoencoderViT`` (or LC-MAE) with a transformer decoder; images: (N, C, H, W) in the
    model's normalisation; mean/std: that normalisation, to show the images; seed: fixes each image's masking
    noise, so that a mask ratio gives the same mask every time.
    """

    def __init__(self, model, images: torch.Tensor, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, seed: int = 0):
        if not hasattr(model, "decoder_blocks"):
            raise ValueError("the explorer needs an MAE with a transformer decoder (decoder='transformer')")
        self.model = model.eval()
        self.images = images
        self.mean, self.std = mean, std
        g = torch.Generator().manual_seed(seed)
        self.noise = torch.rand(images.shape[0], model.num_patches, generator=g)  # (N, L), one per image
        self.num_layers = len(model.decoder_blocks)
        self.num_heads = model.decoder_blocks[0].attn.num_heads
        self.state = {"mask_ratio": 0.75, "image": 0, "query": 0, "layer": 1, "head": "mean"}
        self._widget = None

    # --------------------------------------------------------------------------------------------------
    def mask(self) -> torch.Tensor:
        """The current image's mask, (L,), 1 = masked."""
        i = self.state["image"]
        return masking_from_noise(self.noise[i:i + 1], self.state["mask_ratio"]).mask[0]

    def ratios(self) -> list[float]:
        """The slider's mask ratios (steps of ``RATIO_STEP``) that leave at least one patch visible and one masked
        on this model's grid: 0.05-0.90 on a 4x4 grid, 0.05-0.95 on ImageNet's 14x14."""
        L = self.model.num_patches
        steps = [round(k * RATIO_STEP, 4) for k in range(1, round(1 / RATIO_STEP))]
        return [r for r in steps if 1 <= num_visible(L, r) <= L - 1]

    def masked_positions(self) -> list[int]:
        return self.mask().nonzero().flatten().tolist()

    def query_position(self) -> int:
        """The grid position of the followed masked patch (``update`` keeps the query index among them)."""
        return self.masked_positions()[self.state["query"]]

    def update(self, **changes) -> None:
        """Change settings, each checked here, where it enters (one-line ``ValueError`` naming the value and its
        range; nothing changes then): the mask ratio must leave a patch visible and one masked, the image, layer,
        head and query must exist. A new mask with fewer masked patches moves an unchanged query to the last one."""
        unknown = set(changes) - set(self.state)
        if unknown:
            raise ValueError(f"unknown explorer settings {sorted(unknown)}; use {sorted(self.state)}")
        new = {**self.state, **changes}
        r, L = new["mask_ratio"], self.model.num_patches
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < 1 or \
                not 1 <= num_visible(L, r) <= L - 1:
            ok = self.ratios()
            raise ValueError(f"mask_ratio {r!r} must leave at least one of the {L} patches visible and one masked; "
                             f"choose from {ok[0]} to {ok[-1]}")
        _index("image", new["image"], self.images.shape[0])
        _index("layer", new["layer"], self.num_layers + 1, low=1)
        if new["head"] != "mean":
            _index("head", new["head"], self.num_heads, extra=' or "mean"')
        n_masked = int(masking_from_noise(self.noise[new["image"]:new["image"] + 1], r).mask.sum())
        if "query" in changes:
            _index("query", new["query"], n_masked, extra=" (a masked patch of this mask)")
        else:
            new["query"] = min(new["query"], n_masked - 1)
        self.state = new

    @torch.no_grad()
    def compute(self) -> dict:
        """Everything the figure shows, for the current state."""
        i, layer, head = self.state["image"], self.state["layer"], self.state["head"]
        img = self.images[i:i + 1]
        m = self.mask().unsqueeze(0)  # (1, L)
        q = self.query_position()
        panels = reconstruct(self.model, img, m)
        maps = query_attention_maps(self.model, img, m, torch.tensor([[0, q]]), [layer - 1])[0, 0]  # (H, 1 + L)
        attn = maps.mean(0) if head == "mean" else maps[int(head)]  # (1 + L,)
        distance = attention_distance_curves(self.model, img, part="encoder", mask=m[0])  # (layers, heads)
        return {"panels": panels, "attention": attn, "query": q, "distance": distance}

    def figure(self) -> Figure:
        out = self.compute()
        p, (gh, gw) = patch_size_of(self.model), grid_size_of(self.model)
        H, W = gh * p, gw * p
        masked = to_display(out["panels"]["masked"], self.mean, self.std)[0]
        pasted = to_display(out["panels"]["pasted"], self.mean, self.std)[0]
        q = out["query"]
        cy, cx = (q // gw + 0.5) * p, (q % gw + 0.5) * p
        cmap = matplotlib.colormaps[ATTENTION_CMAP]
        s = self.state
        with style():
            fig = Figure(figsize=(10.5, 2.8), layout="constrained")
            ax = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.5]})
            show_image(ax[0], masked)
            ax[0].set_title(f"masked ({s['mask_ratio']:.2f})")
            show_image(ax[1], pasted)
            ax[1].set_title("reconstruction")
            a = out["attention"].cpu()
            vmax = max(float(a.max()), 1e-12)
            ax[2].imshow(a[1:].reshape(gh, gw).numpy(), cmap=cmap, vmin=0, vmax=vmax,
                         extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
            for k in (0, 2):
                ax[k].add_patch(Circle((cx - 0.5, cy - 0.5), 0.45 * p, fill=False, color=QUERY_COLOR, lw=1.5))
            bare_axes(ax[2])
            # the [CLS] key's weight in the title: drawn on the map it would hide the top-left patch
            ax[2].set_title(f"decoder layer {s['layer']}, head {s['head']}\n[CLS] weight {float(a[0]):.2f}")
            d = out["distance"].cpu().numpy()
            layers = np.arange(1, d.shape[0] + 1)
            ax[3].scatter(np.repeat(layers, d.shape[1]), d.reshape(-1), s=8, alpha=0.5, color=COLORS[0],
                          linewidths=0)
            ax[3].plot(layers, d.mean(1), color=COLORS[0], marker="o")
            ax[3].set_xlabel("encoder layer")
            ax[3].set_ylabel("attention distance (px)")
            ax[3].set_xticks(layers)
        return fig

    def png(self) -> str:
        """The current figure as a base64 PNG."""
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=80)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    # --------------------------------------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets panel (built once)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self):
        import ipywidgets as w  # lazy: optional (ipywidgets: JupyterLab only)

        WIDE = {"description_width": "initial"}  # the labels in full ("masked patch", "decoder layer")

        s = self.state
        ok = self.ratios()
        ratio = w.FloatSlider(value=min(max(s["mask_ratio"], ok[0]), ok[-1]), min=ok[0], max=ok[-1],
                              step=RATIO_STEP, description="mask ratio", continuous_update=False, style=WIDE,
                              readout_format=".2f")
        image = w.Dropdown(options=list(range(self.images.shape[0])), value=s["image"], description="image")
        query = w.IntSlider(value=s["query"], min=0, max=len(self.masked_positions()) - 1,
                            description="masked patch", continuous_update=False, style=WIDE)
        layer = w.IntSlider(value=s["layer"], min=1, max=self.num_layers, description="decoder layer", style=WIDE,
                            continuous_update=False)
        head = w.Dropdown(options=["mean"] + list(range(self.num_heads)), value=s["head"], description="head")
        out = w.Output()

        def redraw(*_):
            # set the Output widget's content directly: no display or clear messages on the kernel's channels,
            # and the frozen widget state carries the image into the static book. An error is shown in the
            # panel, in place of the figure, never only in JupyterLab's log console
            try:
                self.update(mask_ratio=round(ratio.value, 4), image=image.value, layer=layer.value,
                            head=head.value)
                n_masked = len(self.masked_positions())  # the query slider follows the masked patches
                if query.max != n_masked - 1:
                    query.unobserve(redraw, names="value")
                    query.max = n_masked - 1  # clamps the value when it shrinks
                    query.observe(redraw, names="value")
                self.update(query=query.value)
                out.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": self.png(), "text/plain": "<explorer figure>"}},)
            except Exception as e:  # noqa: BLE001 - any failure is shown to the user, in the panel
                out.outputs = ({"output_type": "stream", "name": "stderr",
                                "text": f"error: {type(e).__name__}: {first_line(e)}\n"},)

        for c in (ratio, image, query, layer, head):
            c.observe(redraw, names="value")
        redraw()
        return w.VBox([w.HBox([ratio, image, query]), w.HBox([layer, head]), out])
