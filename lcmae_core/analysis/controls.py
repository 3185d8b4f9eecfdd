"""Null controls: what a measurement gives when the mechanism under test is absent.

A claim of the paper can only hold when its effect is larger than what these produce (``lcmae_core.claims``):

- **the random-init model** of the same shape and seed (``reference_models.load_run_init``): the architecture and
  the measurement without any training;
- **uniform attention**: every query spreads its weight evenly over the patches. Its attention distance is
  ``distance.uniform_attention_distance``; its maps are the same for every image, so Eq. 7 gives exactly 1
  (``UNIFORM_S_ATTN``), and its entropy is the maximum (fraction 1);
- **position embeddings alone** (Eq. 8): the decoder's fixed sin-cos position embeddings as the "reference
  features", so that S^sim measures how much a layer's affinities follow position rather than semantics
  (``position_reference``);
- **the zero prediction** (Table 2): ``reconstruction.reconstruction_loss(..., zero_prediction=True)``;
- **raw pixels** (the accuracy tables): kNN and the encoders' own linear probe (a converged logistic regression, its
  strength chosen on a held-out part of the training split: ``train.probe``) on the pixels of the same split
  (``raw_pixel_baselines``), what a classifier reaches with no representation learning at all.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..train.engine import knn_classify, unpack_correct
from ..train.probe import fit_logreg

UNIFORM_S_ATTN = 1.0  # Eq. 7 of uniform attention: identical maps in every image
UNIFORM_ENTROPY = 1.0  # the entropy of uniform attention, as a fraction of its maximum


def position_reference(model: nn.Module):
    """Eq. 8's null reference: imgs (B, C, H, W) -> (B, L, D) the decoder's position embeddings of the L patches,
    the same for every image (no semantics at all)."""
    pos = model.decoder_pos_embed.detach()[:, 1:, :]  # (1, L, D), the [CLS] slot dropped

    def features(imgs: torch.Tensor) -> torch.Tensor:
        return pos.to(imgs.device).expand(imgs.shape[0], -1, -1)
    return features


def _flat_pixels(ds, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
    xs, ys = zip(*[(x.flatten(1), y) for x, y in loader])
    return torch.cat(xs).float(), torch.cat(ys).long()


def raw_pixel_baselines(train_set, val_set, k: int = 20, temperature: float = 0.07,
                        num_classes: int | None = None, selection_sets=None) -> dict:
    """kNN (the encoders' protocol: cosine, k neighbours weighted by exp(cos / T)) and the encoders' converged
    linear probe (``train.probe.fit_logreg``: standardised, L2 chosen on a held-out part of the training split) on
    the raw pixels of a labelled split.

    train_set / val_set: datasets of (image (C, H, W), label) with the eval transform. Returns {"knn", "logreg"}:
    top-1 accuracy in %, {"knn_correct", "logreg_correct"}: each validation image's hit (numpy bool), and
    "logreg_C": the chosen inverse strength. Deterministic: no seed enters either classifier. selection_sets: None,
    or (fit set, held-out set) where the probe chooses its strength, as the encoders' probe does on the same set
    (``data.PROBE_SPLITS`` of a set whose val split is another region of its images).
    """
    xtr, ytr = _flat_pixels(train_set)
    xva, yva = _flat_pixels(val_set)
    K = int(num_classes or int(ytr.max()) + 1)
    knn = knn_classify(xtr, ytr, xva, yva, k=k, temperature=temperature, num_classes=K, per_sample=True)
    selection = None
    if selection_sets is not None:
        selection = (*_flat_pixels(selection_sets[0]), *_flat_pixels(selection_sets[1]))
    fit = fit_logreg(xtr, ytr, K, selection=selection)
    hits = fit.logits(xva.numpy()).argmax(1) == yva.numpy()
    return {"knn": knn["knn_top1"], "logreg": 100.0 * float(np.mean(hits)), "logreg_C": fit.C,
            "knn_correct": unpack_correct(knn["knn_correct"], len(yva)), "logreg_correct": hits}


__all__ = ["UNIFORM_S_ATTN", "UNIFORM_ENTROPY", "position_reference", "raw_pixel_baselines"]
