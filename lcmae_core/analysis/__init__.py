"""Analysis toolkit for Sec. 4 of the paper: attention maps, attention distance, Eq. 7 / Eq. 8, figures.

- ``attention``: attention probabilities of every encoder/decoder block via hooks that leave outputs untouched
  (``AttentionRecorder``, ``encoder_attention``, ``decoder_attention``, ``masked_query_rows``,
  ``query_attention_maps``).
- ``distance``: attention distance (Figs. 5, 6, A.1): ``attention_distance``, ``attention_distance_curves``; and
  attention entropy (``attention_entropy_curves``), which tells whether attention formed at all.
- ``similarity``: Eq. 7 S^attn (Fig. 2) and Eq. 8 S^sim (Fig. 3), direct and streaming; Eq. 7 per query
  (``query_similarity_curves``, Fig. 4).
- ``reconstruction``: Eq. 1 on held-out images with seeded masks (Table 2).
- ``viz``: the figures (reconstructions, Fig. 4 / B.1 attention maps, Fig. 5 / 6 / A.1 curves) in one style.

Loaders for reference and official checkpoints are in ``lcmae_core.reference_models``.
"""

from .attention import (AttentionMaps, AttentionRecorder, attention_probs, decoder_attention, encoder_attention,
                        masked_query_rows, query_attention_maps)
from .features import decoder_layer_features
from .geometry import decoder_blocks, encoder_blocks, masked_positions, pick_masked_queries, shared_mask
from .distance import (attention_distance, attention_distance_curves, attention_distance_per_query,
                       attention_entropy, attention_entropy_curves, attention_stats_curves, patch_attention,
                       patch_distance_matrix,
                       uniform_attention_distance)
from .similarity import (AttentionSimilarityMeter, affinity_similarity, attention_map_similarity,
                         attention_similarity_curve, decoder_attention_measures, feature_affinity,
                         final_patch_features, query_similarity_curves, semantic_similarity_curve,
                         semantic_similarity_curves)
from .reconstruction import reconstruction_loss

# the figures load matplotlib, which the planner and anything else that reads a measure must not pay for:
# ``viz``'s names are imported on first use (PEP 562)
_VIZ = ("STYLE", "attention_distance_figure", "attention_maps_figure", "layer_curve_figure", "reconstruct",
        "reconstruction_figure", "style")


def __getattr__(name):
    if name in _VIZ:
        from . import viz  # lazy: matplotlib, for the figures only

        return getattr(viz, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["AttentionMaps", "AttentionRecorder", "attention_probs", "decoder_attention", "decoder_blocks",
           "encoder_attention", "encoder_blocks", "masked_positions", "masked_query_rows", "query_attention_maps",
           "shared_mask", "pick_masked_queries", "uniform_attention_distance", "query_similarity_curves",
           "reconstruction_loss", "attention_distance", "attention_distance_curves", "attention_entropy",
           "attention_entropy_curves", "attention_stats_curves", "attention_distance_per_query", "patch_attention",
           "patch_distance_matrix", "AttentionSimilarityMeter", "affinity_similarity", "attention_map_similarity",
           "attention_similarity_curve", "decoder_attention_measures", "decoder_layer_features", "feature_affinity", "final_patch_features",
           "semantic_similarity_curve", "semantic_similarity_curves", "STYLE", "style", "reconstruct",
           "reconstruction_figure", "attention_maps_figure", "attention_distance_figure", "layer_curve_figure"]
