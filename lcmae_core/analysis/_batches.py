"""Iterating over images in batches, from a tensor or from a data loader (shared by the streaming analyses)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def iter_image_batches(images, batch_size: int = 64, device=None, limit: int | None = None) -> Iterator[torch.Tensor]:
    """Yield image batches (B, C, H, W) on ``device``.

    images: a tensor (N, C, H, W), split into batches of ``batch_size``; or any iterable of batches, each a
    tensor (B, C, H, W) or a tuple/list/dict whose first item (or ``"image"``/``"images"`` entry) is one, as a
    ``DataLoader`` yields ``(images, labels)``. ``limit`` stops after that many images (the last batch is cut).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(images, torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}; add a batch dimension")
        source: Iterable = images.split(batch_size)
    else:
        source = images
    seen = 0
    for batch in source:
        if isinstance(batch, dict):
            batch = batch.get("image", batch.get("images"))
        elif isinstance(batch, (tuple, list)):
            batch = batch[0]
        if not isinstance(batch, torch.Tensor) or batch.dim() != 4:
            raise ValueError("each batch must be an image tensor (B, C, H, W) or a tuple whose first item is one; "
                             f"got {type(batch).__name__}")
        if limit is not None:
            if seen >= limit:
                return
            batch = batch[: limit - seen]
        seen += batch.shape[0]
        yield batch.to(device) if device is not None else batch
