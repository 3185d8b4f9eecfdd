"""The pages' helpers that turn runs and records into the prose: the probe's description, the raw-pixel reference,
Table 2's losses, the statistics appendix's numbers."""

import pytest

from lcmae_core import pages
from lcmae_core.runs import Run
from lcmae_core.verdicts import Arm


def _lp(top1, C, converged=True, edge=False):
    return {"lp": Run("lp", "", {}, {"top1": top1, "probe": "logreg", "probe_C": C, "probe_converged": converged,
                                     "probe_C_at_edge": edge})}


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
