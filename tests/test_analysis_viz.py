"""Figures render with the expected panels; the reconstruction pastes visible patches back and undoes norm-pix."""

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure

from lcmae_core.analysis.viz import (STYLE, attention_distance_figure, attention_maps_figure, layer_curve_figure,
                                     reconstruct, reconstruction_figure, style)
from lcmae_core.models import create_model

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def imgs():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def mask16(masked):
    m = torch.zeros(16)
    m[list(masked)] = 1
    return m


def test_reconstruction_pastes_visible_patches(imgs):
    torch.manual_seed(0)
    model = create_model("mae", "test").eval()
    m = mask16(range(4, 16))
    out = reconstruct(model, imgs, m)
    visible = model.unpatchify((1 - m).expand(2, 16)[..., None].expand(2, 16, 192))  # (B, C, H, W), 1 = visible
    assert torch.equal(out["pasted"] * visible, imgs * visible)
    assert torch.equal(out["pasted"] * (1 - visible), out["reconstruction"] * (1 - visible))
    assert torch.equal(out["masked"] * (1 - visible), torch.zeros_like(imgs))


def test_norm_pix_prediction_is_denormalised_with_target_statistics(imgs):
    torch.manual_seed(0)
    model = create_model("mae", "test", norm_pix_loss=True).eval()
    with torch.no_grad():  # make the decoder predict 0 everywhere: the patch mean, once denormalised
        model.decoder_pred.weight.zero_()
        model.decoder_pred.bias.zero_()
    out = reconstruct(model, imgs, mask16(range(16)[:12]))
    patch_mean = model.patchify(imgs).mean(-1, keepdim=True).expand(2, 16, 192)
    torch.testing.assert_close(out["reconstruction"], model.unpatchify(patch_mean))


def test_figures_render(imgs):
    torch.manual_seed(0)
    model = create_model("mae", "test", decoder_depth=3).eval()
    fig = reconstruction_figure(model, imgs, mean=[0.5] * 3, std=[0.2] * 3)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 3
    assert len(reconstruction_figure(model, imgs, show_prediction=True).axes) == 2 * 4
    m = mask16([0, 1, 2, 3, 5, 6, 8, 9, 10, 12, 13, 15])
    fig = attention_maps_figure(model, imgs, m, [[0, 5], [1, 5], [0, 15]], layers=[0, 2])
    assert len(fig.axes) == 3 * (2 + 2)
    # the masked-image panel and every map carry the red query circle; every map carries the CLS block
    ax = fig.axes[2]
    kinds = sorted(type(p).__name__ for p in ax.patches)
    assert kinds == ["Circle", "Rectangle"]
    assert len(attention_maps_figure(model, imgs, m, [[0, 5]], head=1).axes) == 2 + 3
    with pytest.raises(ValueError, match="visible"):
        attention_maps_figure(model, imgs, m, [[0, 4]])
    curves = {"MAE": torch.rand(4, 2) * 10, "DINO": torch.rand(4, 3) * 20, "DeiT": torch.rand(4, 3) * 20}
    assert len(attention_distance_figure(curves).axes) == 3
    fig = attention_distance_figure(curves, overlay=True, title="Fig. 6")
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3 and len(fig.axes[0].collections) == 3
    assert len(layer_curve_figure({"MAE": torch.rand(3)}, "S^attn").axes) == 1
    fig.savefig(__import__("io").BytesIO(), format="png")
    with pytest.raises(ValueError, match="layers, heads"):
        attention_distance_figure({"x": torch.rand(4)})


def test_style_is_one_dict():
    with style():
        assert matplotlib.rcParams["font.size"] == STYLE["font.size"]


def test_log_curves_and_identity_sides_render():
    from lcmae_core.analysis.viz import identity_sides_figure, log_curves_figure
    logs = {s: [{"event": "start"}] + [{"event": "train", "epoch_frac": e / 4, "feature_std": 0.1 / (e + 1),
                                        "effective_rank": 5.0 - e} for e in range(4)] for s in ("a", "c")}
    logs["e"] = [{"event": "train", "epoch_frac": 0.5}]  # a run without the keys draws nothing
    fig = log_curves_figure(logs, {"feature_std": "feature std", "effective_rank": "effective rank"},
                            references={"feature_std": 0.1}, logy=True, title="collapse")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2 + 1 and len(fig.axes[1].lines) == 2
    assert list(fig.axes[0].lines[0].get_xdata()) == [0, 0.25, 0.5, 0.75]
    fig = log_curves_figure({"mae": [{"epoch": 0, "c": 1.0}, {"epoch": 2, "c": 0.5}]}, {"c": "term"}, x="epoch",
                            event=None)
    assert list(fig.axes[0].lines[0].get_ydata()) == [1.0, 0.5]
    with pytest.raises(ValueError, match="nothing to plot"):
        log_curves_figure({}, {"c": "term"})
    lhs = torch.rand(50)
    fig = identity_sides_figure({"Eq. 2": {"lhs": lhs, "rhs": lhs + 1e-7}, "Eq. 4": {"lhs": lhs, "rhs": lhs}})
    assert len(fig.axes) == 2 and len(fig.axes[0].collections) == 1
    fig.savefig(__import__("io").BytesIO(), format="png")
