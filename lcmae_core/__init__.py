"""lcmae_core: the library behind the LC-MAE reproduction book.

- ``lcmae_core.models``: ``MaskedAutoencoderViT`` (the official MAE), ``LCMAE``, ``BlockAutoencoderViT``, sizes.
- ``lcmae_core.losses``: Eq. 1 (``mae_loss``), Eq. 5 (``cross_view_loss``), Eq. 6 (``in_view_loss``).
- ``lcmae_core.masking``: random, shared and two-view masks (1 = masked).
- ``lcmae_core.analysis.identities``: both sides of Eq. 2 and Eq. 4 on a model.
- ``lcmae_core.pretrained``: official fb/mae checkpoints, loaded with ``weights_only=True``.
- ``lcmae_core.train.monitors``: collapse monitors (feature std, effective rank).
"""

__version__ = "0.1.0"
