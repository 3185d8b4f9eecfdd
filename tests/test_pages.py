"""The pages' helpers that turn runs and records into the prose: the probe's description, the raw-pixel reference,
Table 2's losses, the statistics appendix's numbers."""

import pytest

from lcmae_core import pages
from lcmae_core.runs import Run
from lcmae_core.verdicts import Arm


def _lp(top1, C, converged=True, edge=False, by="random", ties=1):
    return {"lp": Run("lp", "", {}, {"top1": top1, "probe": "logreg", "probe_C": C, "probe_converged": converged,
                                     "probe_C_at_edge": edge, "probe_heldout_by": by, "probe_C_ties": ties})}


def test_probe_text_names_the_probe_and_reports_convergence():
    evals = {"mae": {0: _lp(70.0, 10.0), 1: _lp(71.0, 100.0)}, "random": {0: _lp(60.0, 10.0), 1: _lp(61.0, 1e4,
                                                                                                     edge=True)}}
    text = pages.probe_text(evals)
    assert "logistic regression" in text and "held-out fifth" in text and "C = 10, 100, 10000" in text
    assert "every fit converged" in text and "1 chose C at the edge" in text
    evals["mae"][0] = _lp(70.0, 10.0, converged=False)
    assert "1 fit(s) did not converge" in pages.probe_text(evals)
    lars = {"mae": {0: {"lp": Run("lp", "", {}, {"top1": 70.0})}}}
    assert "LARS" in pages.probe_text(lars)
    assert "tied" not in text


def test_probe_text_says_where_the_strength_was_chosen_and_when_a_tie_chose_it():
    regions = {"mae": {0: _lp(81.0, 1e4, by="region"), 1: _lp(82.0, 1e3, by="region", ties=3)}}
    text = pages.probe_text(regions)
    assert "region of the training images that the fit did not see" in text and "held-out fifth" not in text
    assert "in 1 the held-out accuracy tied at its best over several strengths" in text
    # runs of either kind on one page: the page does not claim the region split for all of them
    regions["random"] = {0: _lp(60.0, 1.0)}
    assert "held-out fifth" in pages.probe_text(regions)


def test_pixels_text_says_when_every_encoder_is_below_the_pixels():
    arms = {"mae": Arm("MAE", {"lp": [70.0, 72.0]}), "random": Arm("random init", {"lp": [75.0, 77.0]})}
    below = pages.pixels_text(arms, {"logreg": 89.6})
    assert below.startswith("Every encoder is below the raw pixels") and "random init" in below and "89.6" in below
    assert "above the raw pixels" in pages.pixels_text(arms, {"logreg": 50.0})


def test_reconstruction_summary_reads_the_gain_over_the_zero_prediction():
    s = pages.reconstruction_summary({"transformer": [0.5, 0.5], "conv": [0.6, 0.55]}, [1.0, 1.0])
    assert s["gain_over_zero"] == 0.5 and s["zero_loss_mean"] == 1.0
    assert s["gain_lost"] == {"conv": pytest.approx(0.15)} and s["val_loss_mean"]["conv"] == 0.575


def test_revision_numbers_name_a_missing_page():
    with pytest.raises(KeyError, match="table2_decoders"):
        pages.revision_numbers({})
    rec = lambda m: {"metrics": {"metrics": m}}  # noqa: E731
    loaded = {"table2_decoders": rec({"gain_over_zero": 0.02}),
              "fig5_attention_distance_pretraining": rec({"mean_distance": {"mae": 25.6}, "uniform_distance": 24.94,
                                                          "entropy_mae": 0.74}),
              "fig2_fig3_decoder_position_semantics": rec({"s_attn": {"1": 0.7}, "s_c": {"1": 0.6},
                                                           "entropy_per_seed": {"2": [0.78, 0.85]}})}
    probes = {p: {"random": Run("r", "", {}, {"top1": t, "probe_C": 1e3}), "mae": Run("m", "", {},
                                                                                       {"top1": t + 1, "probe_C": 10.0})}
              for p, t in (("scale", 76.7), ("lars", 40.0))}
    out = pages.revision_numbers(loaded, probes)
    assert out["f5"] == {"mae": 25.6, "uniform": 24.94, "entropy": 0.74} and out["t2"]["gain_over_zero"] == 0.02
    assert "40.0% and the MAE baseline 41.0%" in out["probe_sentence"] and "C = 1000 and 10" in out["probe_sentence"]
    assert "compared on the same features" in pages.revision_numbers(loaded)["probe_sentence"]


def test_raw_pixel_baselines_choose_the_probe_strength_where_the_encoders_probe_does(tmp_path, monkeypatch):
    """On photo_ids the raw pixels' probe scores its strengths on the region splits, as the encoders' does; the
    cached baselines say so in their key, so a store cached with the random fifth is not read for them."""
    import numpy as np
    import torch

    from lcmae_core import data
    from lcmae_core.analysis import controls
    from lcmae_core.experiments import Study
    from lcmae_core.train.probe import fit_logreg

    seen = {}

    def fake(train, val, k, temperature, selection_sets=None):
        seen["selection"] = selection_sets
        return {"knn": 1.0, "logreg": 2.0, "logreg_C": 3.0}
    monkeypatch.setattr(pages, "raw_pixel_controls", fake)
    study = Study(scale="smoke", run_root=str(tmp_path), verbose=False)
    assert pages.raw_pixel_baselines(study, "photo_ids")["probe"] == "logreg-region-C"
    fit_set, select_set = (getattr(s, "dataset", s) for s in seen["selection"])  # a Subset at the smoke limit
    train = data.build_dataset("photo_ids", "train", photo_short_side=study.config("linprobe").data.photo_short_side,
                               fixed=True)
    assert all(f.width + s.width == t.width and f.width > s.width
               for f, s, t in zip(fit_set.photos, select_set.photos, train.photos))
    assert pages.raw_pixel_baselines(study, "mnist5k")["probe"] == "logreg-heldout-C" and seen["selection"] is None
    # the control itself: its probe is the one fitted with the selection splits
    rng = np.random.default_rng(0)

    def blobs(n, shift=0.0):
        y = torch.from_numpy(rng.integers(0, 3, size=n))
        return torch.utils.data.TensorDataset(torch.randn(n, 3, 4, 4) + y.view(-1, 1, 1, 1) * 0.5 + shift, y)
    sets = [blobs(120), blobs(60, 0.3), blobs(90), blobs(60, 0.3)]
    res = controls.raw_pixel_baselines(sets[0], sets[1], selection_sets=(sets[2], sets[3]))
    flat = [controls._flat_pixels(s) for s in sets]
    fit = fit_logreg(*flat[0], 3, selection=(*flat[2], *flat[3]))
    assert res["logreg_C"] == fit.C
    assert res["logreg"] == 100.0 * float(np.mean(fit.logits(flat[1][0].numpy()).argmax(1) == flat[1][1].numpy()))
