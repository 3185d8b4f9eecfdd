"""The converged linear probe (``train.probe``): deterministic given the features, its strength chosen on a held-out
part of the training split, equal to an independent scikit-learn fit, written into the probe head exactly; and the
probe runs of the small scales, checked against features extracted again from their frozen encoders."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lcmae_core import configs, runs
from lcmae_core.configs import ConfigError
from lcmae_core.models import build_model
from lcmae_core.reference_models import load_run
from lcmae_core.train import common
from lcmae_core.train.engine import extract_features
from lcmae_core.train.linprobe import cls_features
from lcmae_core.train.probe import C_GRID, fit_logreg, heldout_split, load_into_head, solver_for


def _blobs(n=600, d=16, k=4, seed=0, spread=2.5):
    """k Gaussian classes in d dimensions, overlapping enough that regularisation matters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = rng.integers(0, k, size=n)
    x = centres[y] + spread * rng.normal(size=(n, d)) + 5.0  # an offset the standardisation must remove
    return x.astype(np.float32), y


def test_the_fit_is_deterministic_and_chooses_c_on_held_out_training_data():
    x, y = _blobs()
    a, b = fit_logreg(x, y), fit_logreg(x.copy(), y.copy())
    assert a.C == b.C and np.array_equal(a.coef, b.coef) and a.heldout == b.heldout
    assert set(a.heldout) == set(C_GRID) and a.converged and a.n_iter > 0
    best = max(a.heldout.values())
    assert a.heldout[a.C] == best and a.C == min(c for c, v in a.heldout.items() if v == best)
    # the held-out part is a fixed, stratified fifth of the training split
    fit_idx, held_idx = heldout_split(y)
    assert len(held_idx) == len(y) // 5 and not set(fit_idx) & set(held_idx)
    assert np.array_equal(heldout_split(y)[1], held_idx)
    assert {int(c) for c in np.unique(y[held_idx])} == set(range(4))


def test_the_fit_equals_an_independent_scikit_learn_fit_and_the_head_reproduces_it():
    x, y = _blobs()
    xv, yv = _blobs(n=400, seed=1)
    fit = fit_logreg(x, y)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=fit.C, max_iter=10_000, tol=1e-8)).fit(x, y)
    ours = fit.logits(xv).argmax(1)
    assert np.mean(ours == ref.predict(xv)) > 0.995
    assert abs(100 * np.mean(ours == yv) - 100 * ref.score(xv, yv)) < 0.5
    # the probe head of every linear-probe run: BatchNorm1d(affine=False, eps=1e-6) + Linear, in eval mode
    head = torch.nn.Sequential(torch.nn.BatchNorm1d(16, affine=False, eps=1e-6), torch.nn.Linear(16, 4)).eval()
    load_into_head(head, fit)
    with torch.no_grad():
        logits = head(torch.from_numpy(xv)).double().numpy()
    assert np.allclose(logits, fit.logits(xv), atol=1e-3)


def test_a_selection_split_chooses_c_and_the_whole_training_split_refits():
    """Given selection splits (a set whose val split is another region), C is chosen by the accuracy of a fit on the
    first scored on the second, each strength as an independent fit computes it; the final fit is on all the training
    features, as without them; ties are counted."""
    x, y = _blobs()
    xf, yf = _blobs(n=300, seed=2)
    xs, ys = _blobs(n=200, seed=3, spread=4.0)
    fit = fit_logreg(x, y, selection=(xf, yf, xs, ys))
    assert fit.heldout_by == "region" and fit_logreg(x, y).heldout_by == "random"
    for C, acc in fit.heldout.items():
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10_000, tol=1e-8)).fit(xf, yf)
        assert abs(acc - 100 * ref.score(xs, ys)) <= 1.0  # one held-out sample in 200 at most
    best = max(fit.heldout.values())
    assert fit.C == min(c for c, a in fit.heldout.items() if a == best)
    assert fit.ties == sum(a == best for a in fit.heldout.values()) and fit.metrics()["probe_C_ties"] == fit.ties
    # the final classifier is the whole training split's fit at the chosen C
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=fit.C, max_iter=10_000, tol=1e-8)).fit(x, y)
    assert np.mean(fit.logits(xs).argmax(1) == ref.predict(xs)) > 0.99
    # classes far apart: every strength classifies the held-out part perfectly, all tie, the strongest is chosen
    centres = np.random.default_rng(0).normal(size=(4, 16)) * 10

    def far_apart(n, seed):
        y_ = np.random.default_rng(seed).integers(0, 4, size=n)
        return centres[y_] + np.random.default_rng(seed + 1).normal(size=(n, 16)), y_
    far = [far_apart(n, s) for n, s in ((300, 4), (300, 6), (100, 8))]
    sep = fit_logreg(*far[0], selection=(*far[1], *far[2]))
    assert set(sep.heldout.values()) == {100.0} and sep.ties == len(C_GRID) and sep.C == min(C_GRID)
    with pytest.raises(ValueError, match="dimensions"):
        fit_logreg(x, y, selection=(xf[:, :8], yf, xs, ys))


def test_regularisation_matters_where_the_features_overfit():
    """Few samples in many dimensions: the held-out part picks a strong penalty; plenty: a weak one."""
    few = fit_logreg(*_blobs(n=120, d=100, spread=4.0))
    many = fit_logreg(*_blobs(n=4000, d=8, spread=1.0))
    assert few.C < many.C


def test_absent_and_binary_classes_and_bad_input():
    x, y = _blobs(k=2)
    fit = fit_logreg(x, y, num_classes=3)  # class 2 never appears in training: it is never predicted
    assert fit.coef.shape == (3, 16) and not np.isfinite(fit.intercept[2])
    assert set(fit.logits(x).argmax(1)) <= {0, 1} and np.mean(fit.logits(x).argmax(1) == y) > 0.7
    with pytest.raises(ValueError, match="2 classes"):
        fit_logreg(x, np.zeros_like(y))
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        fit_logreg(x[:10], y)


def test_wide_features_use_lbfgs():
    assert solver_for(64, 10) == "newton-cholesky" and solver_for(2352, 10) == "lbfgs"
    x, y = _blobs(n=300, d=200, k=3)
    fit = fit_logreg(x, y)
    assert fit.converged and fit.coef.shape == (3, 200)


def test_probe_config_is_checked_and_lars_names_are_unchanged():
    assert configs.build("linprobe", "cpu").probe == "logreg" and configs.build("linprobe", "paper").probe == "lars"
    with pytest.raises(ConfigError, match="cached features"):
        configs.validate(configs.build("linprobe", "paper", {"probe": "logreg"}))
    with pytest.raises(ConfigError, match="unknown probe"):
        configs.validate(configs.build("linprobe", "cpu", {"probe": "sgd"}))
    # the LARS probe hashes as every probe did before the field existed (the paper scale's runs keep their names)
    assert configs.run_name(configs.build("linprobe", "paper")) == "linprobe-4e1012644842"
    assert configs.run_name(configs.build("linprobe", "cpu", {"probe": "lars"})) == "linprobe-21f4c96f10a9"
    # the solved probe does not read the optimizer: changing it names the same run
    a = configs.build("linprobe", "cpu")
    assert configs.run_name(a) == configs.run_name(configs.build("linprobe", "cpu", {"optim.epochs": 7}))


@pytest.fixture(scope="module")
def probe_runs(tmp_path_factory):
    """A smoke MAE, and its solved probe at two probe seeds, and the random-init encoder's."""
    root = str(tmp_path_factory.mktemp("runs"))
    mae = runs.run_or_load(configs.build("mae", "smoke", {"progress": False}), root=root)
    out = {}
    for name, pre, seed in (("mae", mae.name, 0), ("mae-seed1", mae.name, 1), ("random", None, 0)):
        cfg = configs.build("linprobe", "smoke", {"progress": False, "pretrain": pre, "seed": seed})
        out[name] = runs.run_or_load(cfg, root=root)
    return out


def test_probe_seeds_agree(probe_runs):
    a, b = probe_runs["mae"].metrics, probe_runs["mae-seed1"].metrics
    assert abs(a["top1"] - b["top1"]) <= 0.2 and a["probe_C"] == b["probe_C"]


@pytest.mark.parametrize("name", ["mae", "random"])
def test_a_probe_run_is_within_3_points_of_a_converged_regression_on_its_frozen_features(probe_runs, name):
    """The issue's check, independent of the run's code path: features extracted again from the run's checkpoint,
    scikit-learn's own standardisation and fit at the run's C, scored on the same validation images."""
    run = probe_runs[name]
    model, _ = load_run(run.checkpoint)
    cfg = configs.from_dict(run.config)
    dev = torch.device("cpu")
    feats = {}
    for split in ("train", "val"):
        ds = common.eval_dataset(cfg, cfg.data.dataset, split)
        feats[split] = extract_features(cls_features(model.eval()), common.eval_loader(ds, 64, cfg, dev, False), dev)
    (xtr, ytr), (xva, yva) = ((f.numpy(), y.numpy()) for f, y in (feats["train"], feats["val"]))
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=run.metrics["probe_C"], max_iter=10_000)).fit(xtr, ytr)
    assert abs(run.metrics["top1"] - 100 * ref.score(xva, yva)) <= 3.0
    # the stored head on those features gives the run's reported accuracy
    with torch.no_grad():
        hits = model.head(torch.from_numpy(xva)).argmax(1).numpy() == yva
    assert math.isclose(100 * hits.mean(), run.metrics["top1"], abs_tol=1e-6)
    assert run.metrics["probe_converged"] and math.isfinite(run.metrics["train_loss"])


def test_a_random_head_is_not_what_the_checkpoint_holds(probe_runs):
    """A control for the check above: a probe head left at its initialisation is far from the run's accuracy."""
    run = probe_runs["mae"]
    model, _ = load_run(run.checkpoint)
    fresh = build_model(configs.from_dict(run.config), model.head[1].out_features)
    assert not torch.equal(fresh.head[1].weight, model.head[1].weight)


def test_a_probe_on_photo_ids_chooses_its_strength_on_the_region_splits(tmp_path, monkeypatch):
    """photo_ids (val: another region of the photos): the probe run scores its strengths on a fit on ``probe_fit``
    scored on ``probe_select``, which the run records, and its name is not the name the random-fifth probe had."""
    from lcmae_core import data

    cfg = configs.build("linprobe", "smoke", {"progress": False, "data.dataset": "photo_ids", "model.img_size": 28})
    run = runs.run_or_load(cfg, root=str(tmp_path))
    m = run.metrics
    assert m["probe_heldout_by"] == "region" and m["probe_C_ties"] >= 1 and set(m["probe_heldout"]) == {
        f"{c:g}" for c in C_GRID}
    # the held-out accuracies are those of a fit on the fit split's features scored on the select split's
    model, _ = load_run(run.checkpoint)
    dev = torch.device("cpu")
    f = {}
    for split in data.PROBE_SPLITS:
        ds = common.eval_dataset(cfg, "photo_ids", split)
        f[split] = [t.numpy() for t in extract_features(cls_features(model.eval()),
                                                        common.eval_loader(ds, 64, cfg, dev, False), dev)]
    C = m["probe_C"]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10_000, tol=1e-8)).fit(*f["probe_fit"])
    n = len(f["probe_select"][1])
    assert abs(m["probe_heldout"][f"{C:g}"] - 100 * ref.score(*f["probe_select"])) <= 100 / n + 1e-6
    # the same config with a random-fifth probe is another run
    name = configs.run_name(cfg)
    monkeypatch.setitem(data.DATASETS, "photo_ids", dataclasses.replace(data.DATASETS["photo_ids"],
                                                                        probe_heldout="random"))
    assert configs.run_name(cfg) != name


def test_the_solved_head_is_scored_in_fp32_under_any_autocast(monkeypatch):
    """A run in bf16 (the GPU's default) scores its solved head in fp32, whose logits are the fit's; a LARS probe
    (fb/mae's protocol) scores under the run's autocast, as fb/mae does."""
    from lcmae_core.train import linprobe

    seen = []

    def spy(model, loader, device, amp, **kw):
        seen.append(amp)
        return {"top1": 0.0, "loss": 0.0, "num_samples": 0}

    monkeypatch.setattr(linprobe, "evaluate", spy)
    for probe in ("logreg", "lars"):
        cfg = configs.build("linprobe", "smoke", {"progress": False, "amp": "bf16", "probe": probe})
        linprobe.build(cfg, torch.device("cpu")).final_eval()
    assert seen == ["fp32", "bf16"]
