"""The interactive explorer: state, masks, the figure, and the widget panel."""

import pytest
import torch

from lcmae_core.analysis.explorer import Explorer
from lcmae_core.models import create_model


def _explorer(n=3):
    torch.manual_seed(0)
    model = create_model("mae", "test")
    return Explorer(model, torch.randn(n, 3, 32, 32))


def test_mask_follows_the_ratio_and_is_fixed_per_image():
    ex = _explorer()
    L = ex.model.num_patches
    for r in (0.25, 0.5, 0.75):
        ex.update(mask_ratio=r)
        m = ex.mask()
        assert int(m.sum()) == L - int(L * (1 - r))
        assert torch.equal(m, ex.mask())  # the same mask every time for the same state
    ex.update(image=1)
    assert not torch.equal(ex.mask(), _explorer().mask())  # another image, another noise row


def test_query_is_always_a_masked_patch():
    ex = _explorer()
    n = len(ex.masked_positions())
    for q in range(n):
        ex.update(query=q)
        assert ex.mask()[ex.query_position()] == 1
    with pytest.raises(ValueError, match=f"query must be an integer from 0 to {n - 1}"):
        ex.update(query=n)  # no silent wrap-around
    ex.update(mask_ratio=0.25)  # fewer masked patches: the unchanged query moves to the last one
    assert ex.state["query"] == len(ex.masked_positions()) - 1 and ex.mask()[ex.query_position()] == 1


@pytest.mark.parametrize("bad", [{"mask_ratio": 0}, {"mask_ratio": 1.0}, {"mask_ratio": 0.99}, {"mask_ratio": "x"},
                                 {"image": 99}, {"image": -1}, {"head": 99}, {"head": -1}, {"head": "max"},
                                 {"layer": 0}, {"layer": 99}, {"query": 2.5}])
def test_every_setting_is_checked_where_it_enters(bad):
    """Each bad value is one line naming it and its range, and leaves the explorer as it was (no division by zero,
    no IndexError deep in the figure, no negative head taken from the end)."""
    ex = _explorer()
    before = dict(ex.state)
    with pytest.raises(ValueError) as e:
        ex.update(**bad)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and next(iter(bad)) in msg and repr(next(iter(bad.values()))) in msg
    assert ex.state == before


def test_compute_shapes_and_attention_is_a_distribution():
    ex = _explorer()
    ex.update(mask_ratio=0.5, layer=1, head=1)
    out = ex.compute()
    L = ex.model.num_patches
    assert out["attention"].shape == (1 + L,)
    torch.testing.assert_close(out["attention"].sum(), torch.tensor(1.0), rtol=1e-5, atol=1e-5)
    assert out["distance"].shape == (len(ex.model.blocks), ex.model.blocks[0].attn.num_heads)
    assert out["panels"]["pasted"].shape == (1, 3, 32, 32)


def test_unknown_setting_is_refused():
    ex = _explorer()
    try:
        ex.update(colour="red")
    except ValueError as e:
        assert "colour" in str(e)
    else:
        raise AssertionError("an unknown setting was accepted")


def test_widget_redraws_when_a_slider_moves():
    ex = _explorer()
    panel = ex.widget
    ratio = panel.children[0].children[0]
    out = panel.children[-1]
    assert ratio.description == "mask ratio"
    ratio.value = 0.5
    assert ex.state["mask_ratio"] == 0.5
    layer = panel.children[1].children[0]
    layer.value = 1
    assert ex.state["layer"] == 1
    fig = ex.figure()
    assert len(fig.axes) == 4
    shown = out.outputs[0]["data"]["image/png"]
    assert shown == ex.png()  # the panel shows the current state's figure
    ratio.value = 0.25
    assert out.outputs[0]["data"]["image/png"] != shown


def test_every_control_at_its_extremes_draws_a_figure_and_bounds_follow_the_grid():
    """The callback at the minimum and maximum of every control (and the ratio at both ends with the query at its
    last masked patch): each state draws the figure, never an error, and the sliders cannot leave the grid."""
    ex = _explorer()
    L = ex.model.num_patches
    panel = ex.widget
    ratio, image, query = panel.children[0].children
    layer, head = panel.children[1].children
    out = panel.children[-1]
    assert ex.ratios()[0] == ratio.min and ex.ratios()[-1] == ratio.max
    assert int(L * (1 - ratio.max)) >= 1 and L - int(L * (1 - ratio.min)) >= 1  # one visible, one masked
    extremes = [(ratio, ratio.min), (ratio, ratio.max), (image, image.options[-1]), (image, image.options[0]),
                (layer, layer.max), (layer, layer.min), (head, head.options[-1]), (head, head.options[0])]
    for control, value in extremes:
        control.value = value
        for q in (query.min, query.max):
            query.value = q
            assert out.outputs[0]["output_type"] == "display_data", (control.description, value, out.outputs)
            assert ex.state["query"] == q and ex.query_position() == ex.masked_positions()[q]
    for r in (ratio.min, ratio.max):  # the query slider follows the number of masked patches
        ratio.value = r
        assert query.max == len(ex.masked_positions()) - 1


def test_an_error_in_the_callback_is_shown_in_the_panel(monkeypatch):
    ex = _explorer()
    panel = ex.widget
    ratio, out = panel.children[0].children[0], panel.children[-1]

    def broken():
        raise ValueError("no patch tokens\nsecond line")

    monkeypatch.setattr(ex, "compute", broken)
    ratio.value = ratio.max
    shown = out.outputs[0]
    assert shown["output_type"] == "stream" and shown["text"] == "error: ValueError: no patch tokens\n"
