"""The converged linear probe of the small scales: L2-regularised multinomial logistic regression on frozen features.

fb/mae's probe (a BatchNorm + linear head trained by LARS, ``train.linprobe``) is the paper scale's protocol. On a
few thousand cached features its 50 LARS epochs did not converge: on the cpu build's own features a converged
logistic regression gave every random-init encoder 20+ points more than the head did, so the accuracies measured the
optimiser, not the representation. Here the probe is solved instead of trained (``fit_logreg``):

1. the features are standardised exactly as the probe head's ``BatchNorm1d(affine=False, eps=1e-6)`` does in eval
   mode (the training split's mean and biased variance), so the fitted classifier *is* that head
   (``load_into_head``) and the run's checkpoint classifies like any other probe;
2. the L2 strength is chosen per run on a held-out part of the training split (``HELDOUT_FRACTION``, stratified,
   with the fixed seed ``SPLIT_SEED``; never the validation split), from ``C_GRID`` (scikit-learn's C, the inverse
   strength), by held-out accuracy, ties going to the stronger regularisation. Where the val split is another
   region of the same images (``data.DatasetInfo.probe_heldout`` "region": ``photo_ids``, the right third of each
   photo), a random fifth of the training crops overlaps the crops it is held out from and scores 100% at almost
   every strength (at the gpu scale, seeds 0 and 1: 3 to 8 of the 8 strengths tied at 100% in each probe run, 7 and 8
   of them for the MAE's, so the tie rule chose, not the data); there the caller passes ``selection``: crops of the
   training region cut again as train and val were (``data.PROBE_SPLITS``), fitted on the one and scored on the
   other, standardised with the fitted crops' own statistics as the final fit is with the training split's;
3. it is refitted on the whole training split with that C to convergence (``TOL``; ``converged`` records whether
   it got there within ``MAX_ITER`` iterations).

The solver (``solver_for``) is scikit-learn's ``newton-cholesky`` where the (D + 1) x K parameters are few
(``NEWTON_MAX_PARAMS``): exact Newton steps converge in about ten iterations at any C, where L-BFGS needed thousands
at weak regularisation (9,169 iterations and 15 s at C = 1000 on a cpu-scale encoder's 64-d features, against 10
and 1 s). Its Hessian grows with the square of the parameters, so wide features (raw pixels, a ViT-B's 768-d
[CLS]) use L-BFGS, which converges fast on them. The choice of C reads held-out accuracy, which a looser tolerance
(``TOL_SELECT``) reaches already.

No seed enters: given the features, the probe is deterministic (two probe seeds give the same classifier).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

C_GRID = tuple(10.0 ** k for k in range(-3, 5))  # 0.001 ... 10^4: from nearly constant to nearly unregularised
HELDOUT_FRACTION = 0.2  # a fifth of the training split chooses C
SPLIT_SEED = 0  # fixed: the held-out part must not change with the run's seed
BN_EPS = 1e-6  # the probe head's BatchNorm1d eps (fb/mae)
NEWTON_MAX_PARAMS = 1500  # (D + 1) x K up to which newton-cholesky solves (its Hessian: 18 MB at 1,500)
TOL = {"newton-cholesky": 1e-8, "lbfgs": 1e-6}  # the final fit: iterate until the gradient is this small
TOL_SELECT = 1e-4  # the fits that choose C (scikit-learn's default tolerance)
MAX_ITER = {"newton-cholesky": 100, "lbfgs": 10_000}  # Newton took 4 to 11 iterations on cpu-scale features


@dataclass
class LogregFit:
    """A fitted probe. mean, var: (D,) the standardisation (the head's BatchNorm running statistics); coef (K, D),
    intercept (K,): the linear layer on standardised features; C: the chosen inverse strength; heldout: {C: held-out
    top-1 in %} over ``C_GRID``; n_iter: L-BFGS iterations of the final fit; converged: below ``MAX_ITER``;
    heldout_by: "random" (a fifth of the training split) or "region" (the caller's ``selection`` splits)."""

    mean: np.ndarray
    var: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    C: float
    heldout: dict = field(default_factory=dict)
    n_iter: int = 0
    converged: bool = True
    heldout_by: str = "random"

    @property
    def ties(self) -> int:
        """How many strengths of the grid tied at the best held-out accuracy (1: the data chose C; more: the rule
        "ties go to the stronger regularisation" did, e.g. a held-out part every strength classifies perfectly)."""
        best = max(self.heldout.values()) if self.heldout else math.nan
        return sum(a == best for a in self.heldout.values())

    def logits(self, feats) -> np.ndarray:
        """feats (M, D) -> (M, K) logits, exactly as the head computes them."""
        return standardise(np.asarray(feats, dtype=np.float64), self.mean, self.var) @ self.coef.T + self.intercept

    def metrics(self) -> dict:
        """What a run records about its probe (``probe_*`` keys of its metrics.json)."""
        return {"probe": "logreg", "probe_C": self.C, "probe_heldout": {f"{c:g}": round(a, 2)
                                                                         for c, a in self.heldout.items()},
                "probe_iterations": self.n_iter, "probe_converged": self.converged,
                "probe_C_at_edge": self.C in (min(C_GRID), max(C_GRID)), "probe_heldout_by": self.heldout_by,
                "probe_C_ties": self.ties}


def standardise(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(x - mean) / sqrt(var + eps): BatchNorm1d(affine=False) in eval mode. x (M, D) float64."""
    return (x - mean) / np.sqrt(var + BN_EPS)


def heldout_split(labels: np.ndarray, fraction: float = HELDOUT_FRACTION, seed: int = SPLIT_SEED):
    """(fit indices, held-out indices) of the training split: stratified over the classes when every class has at
    least two samples, else a plain random split; the same for every run on the same labels."""
    from sklearn.model_selection import train_test_split  # lazy: 2 s to import, probes only

    idx = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    strat = labels if counts.min() >= 2 and len(counts) <= fraction * len(labels) else None
    return train_test_split(idx, test_size=fraction, random_state=seed, stratify=strat)


def solver_for(n_features: int, n_classes: int) -> str:
    """newton-cholesky for few parameters, L-BFGS for many (see the module docstring)."""
    return "newton-cholesky" if (n_features + 1) * max(n_classes, 2) <= NEWTON_MAX_PARAMS else "lbfgs"


def _solve(x: np.ndarray, y: np.ndarray, C: float, tol: float | None = None):
    """One fit of the multinomial logistic regression on standardised x -> the scikit-learn estimator. Its BLAS
    runs on torch's thread count (one in the book's training workers, which share the cores)."""
    import sklearn  # lazy: as above
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 6):
        raise RuntimeError(f"the probe needs scikit-learn >= 1.6 (multinomial newton-cholesky), found "
                           f"{sklearn.__version__}; pip install -r requirements.txt")
    solver = solver_for(x.shape[1], len(np.unique(y)))
    clf = LogisticRegression(C=C, solver=solver, tol=TOL[solver] if tol is None else tol, max_iter=MAX_ITER[solver])
    with warnings.catch_warnings(), threadpool_limits(torch.get_num_threads()):
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as ``converged`` instead
        clf.fit(x, y)
    return clf


def _full_classes(clf, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's (coef, intercept) laid out over all ``num_classes`` classes: a class absent from the training
    split gets logit -inf (never predicted); a binary problem's single row becomes the two rows [0, w]."""
    D = clf.coef_.shape[1]
    coef = np.zeros((num_classes, D))
    intercept = np.full(num_classes, -np.inf)
    classes = clf.classes_.astype(int)
    if len(classes) == 2 and clf.coef_.shape[0] == 1:
        coef[classes[1]], intercept[classes[0]], intercept[classes[1]] = clf.coef_[0], 0.0, clf.intercept_[0]
    else:
        coef[classes], intercept[classes] = clf.coef_, clf.intercept_
    return coef, intercept


def _arrays(feats, labels) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(feats.numpy() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
    y = np.asarray(labels.numpy() if isinstance(labels, torch.Tensor) else labels).astype(int)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"the probe needs features (M, D) and labels (M,); got {x.shape} and {y.shape}")
    return x, y


def fit_logreg(feats, labels, num_classes: int | None = None, c_grid=C_GRID, selection=None) -> LogregFit:
    """The probe of ``feats`` (M, D) with ``labels`` (M,): C chosen on the held-out part, then refitted on all M.

    selection: None (the held-out part is a random fifth of the training split, ``heldout_split``), or
    (fit features, fit labels, held-out features, held-out labels) where C is chosen instead: the region splits of
    a set whose val split is another region (see the module docstring)."""
    x, y = _arrays(feats, labels)
    K = int(num_classes or y.max() + 1)
    if len(np.unique(y)) < 2:
        raise ValueError("the probe needs at least 2 classes in the training split")
    mean, var = x.mean(0), x.var(0)
    z = standardise(x, mean, var)
    if selection is None:
        fit_idx, held_idx = heldout_split(y)
        z_fit, y_fit, z_held, y_held = z[fit_idx], y[fit_idx], z[held_idx], y[held_idx]
    else:
        (x_fit, y_fit), (x_held, y_held) = _arrays(*selection[:2]), _arrays(*selection[2:])
        if x_fit.shape[1] != x.shape[1] or x_held.shape[1] != x.shape[1]:
            raise ValueError(f"the probe's selection features have {x_fit.shape[1]} and {x_held.shape[1]} "
                             f"dimensions, the training features {x.shape[1]}")
        m, v = x_fit.mean(0), x_fit.var(0)
        z_fit, z_held = standardise(x_fit, m, v), standardise(x_held, m, v)
    heldout = {}
    if len(np.unique(y_fit)) >= 2:
        for C in sorted(c_grid):
            clf = _solve(z_fit, y_fit, C, TOL_SELECT)
            heldout[C] = 100.0 * float(np.mean(clf.predict(z_held) == y_held))
    best = max(heldout.values()) if heldout else math.nan
    C = min(c for c, a in heldout.items() if a == best) if heldout else 1.0  # ties: the stronger regularisation
    clf = _solve(z, y, C)
    coef, intercept = _full_classes(clf, K)
    n_iter = int(np.max(clf.n_iter_))
    return LogregFit(mean, var, coef, intercept, float(C), heldout, n_iter,
                     n_iter < MAX_ITER[solver_for(x.shape[1], len(np.unique(y)))],
                     "random" if selection is None else "region")


@torch.no_grad()
def load_into_head(head: torch.nn.Sequential, fit: LogregFit) -> None:
    """Write a fit into the probe head ``Sequential(BatchNorm1d(D, affine=False, eps=1e-6), Linear(D, K))``: the
    BatchNorm's running statistics become the standardisation, the Linear layer the regression. In eval mode the
    head then gives ``fit.logits`` (up to float32 rounding)."""
    bn, lin = head[0], head[1]
    if not math.isclose(bn.eps, BN_EPS):
        raise ValueError(f"the probe head's BatchNorm eps is {bn.eps}, the probe standardises with {BN_EPS}")
    bn.running_mean.copy_(torch.as_tensor(fit.mean))
    bn.running_var.copy_(torch.as_tensor(fit.var))
    lin.weight.copy_(torch.as_tensor(fit.coef))
    # an absent class: a very negative bias instead of -inf, which float arithmetic would turn into NaN losses
    lin.bias.copy_(torch.as_tensor(np.where(np.isfinite(fit.intercept), fit.intercept, -1e4)))


__all__ = ["C_GRID", "HELDOUT_FRACTION", "SPLIT_SEED", "LogregFit", "fit_logreg", "load_into_head", "standardise",
           "heldout_split", "solver_for"]
