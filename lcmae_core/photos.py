"""The bundled photographs (scikit-image's and scikit-learn's, no download) and the crops the photo sets are made of:
which photo pretraining sees and which only the analysis sees, random crops per sample (``PhotoCrops``) and fixed,
seeded crops (``FixedCrops``). ``lcmae_core.data`` builds the ``photos``, ``photo_ids`` and ``single_image`` sets from
them."""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image

from .errors import DataError

# scikit-image's colour photographs that ship inside the wheel (others need pooch and a network)
PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
# the photos set: what pretraining sees (colour and grey photographs, textures), and what only the analysis sees
PRETRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                   "camera", "coins", "moon", "brick", "grass", "gravel")
ANALYSIS_PHOTOS = ("chelsea", "china", "flower")
SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}  # scikit-learn's two bundled sample images
BUNDLED_PHOTOS = tuple(dict.fromkeys(PHOTO_NAMES + PRETRAIN_PHOTOS + ANALYSIS_PHOTOS))
ANALYSIS_CROPS = 512  # fixed crops per eval split of the photo sets
FIXED_CROP_SCALE = (0.2, 1.0)  # their area, as a fraction of the photo's (pretraining's RandomResizedCrop range)
PHOTO_IDS_TRAIN_FRACTION = 2 / 3  # photo_ids: the left part of each photo trains, the right part validates
# photo_ids' train part cut again as the photo is: the converged probe fits on "fit" and scores its L2 strengths on
# "select" (``train.probe``), so that its held-out crops share no pixel with the crops it fits, as the val crops don't
PROBE_PARTS = ("fit", "select")
PARTS = ("all", "train", "val") + PROBE_PARTS


@functools.lru_cache(maxsize=None)
def load_photo(name: str, short_side: int | None = None) -> Image.Image:
    """A bundled photo (scikit-image's, or scikit-learn's china and flower) as an RGB PIL image (grey ones
    replicated), downscaled so its short side is at most short_side."""
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image  # lazy: optional, only the bundled data needs it (2 s to import)

        arr = load_sample_image(SKLEARN_PHOTOS[name])
    else:
        import skimage.data  # lazy: optional, only the bundled data needs it

        fn = getattr(skimage.data, name, None) if name in BUNDLED_PHOTOS else None
        if fn is None:
            raise DataError(f"unknown bundled photo {name!r}; choose one of {', '.join(BUNDLED_PHOTOS)}")
        try:
            arr = fn()
        except Exception as e:  # data that needs pooch/network
            raise DataError(f"scikit-image photo {name!r} is not bundled offline ({type(e).__name__}); "
                            f"choose one of {', '.join(BUNDLED_PHOTOS)}") from None
    img = Image.fromarray(np.asarray(arr)).convert("RGB")
    if short_side and min(img.size) > short_side:
        s = short_side / min(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BICUBIC)
    return img


def photo_part(img: Image.Image, part: str) -> Image.Image:
    """The left ``PHOTO_IDS_TRAIN_FRACTION`` of a photo ("train"), the rest ("val"), or all of it ("all"); and the
    train part cut again the same way ("fit": its left ``PHOTO_IDS_TRAIN_FRACTION``, "select": the rest), where the
    converged probe chooses its L2 strength (``PROBE_PARTS``): held-out crops of pixels the fit never sees, as the
    val crops are."""
    if part not in PARTS:
        raise ValueError(f"unknown photo part {part!r}; choose one of {', '.join(PARTS)}")
    if part == "all":
        return img
    if part in PROBE_PARTS:
        img, part = photo_part(img, "train"), {"fit": "train", "select": "val"}[part]
    cut = round(img.width * PHOTO_IDS_TRAIN_FRACTION)
    return img.crop((0, 0, cut, img.height) if part == "train" else (cut, 0, img.width, img.height))


class PhotoCrops(torch.utils.data.Dataset):
    """``length`` samples cycling over a few photos; the (random) transform makes each sample a new crop.

    labels: one per photo (``photo_ids``), or None: unlabelled, every label -1.
    """

    def __init__(self, photos: list[Image.Image], length: int, transform=None, labels=None):
        self.photos, self.length, self.transform = photos, length, transform
        self.photo_labels = list(labels) if labels is not None else [-1] * len(photos)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        img = self.photos[i % len(self.photos)]
        return (self.transform(img) if self.transform else img), self.photo_labels[i % len(self.photos)]


class FixedCrops(torch.utils.data.Dataset):
    """``length`` square crops cycling over photos, each fixed by (seed, index): a side drawn so the crop's area
    is a fraction in ``scale`` of the photo's (capped by its short side) and a uniform position. The same
    index is always the same crop, so an eval split of the photo sets is a fixed set of images; the transform
    (the eval one) resizes each crop to the model's size. The label is the photo's (``labels``), else its index."""

    def __init__(self, photos: list[Image.Image], length: int, transform=None, labels=None,
                 scale: tuple[float, float] = FIXED_CROP_SCALE, seed: int = 0):
        self.photos, self.length, self.transform, self.scale, self.seed = photos, length, transform, scale, seed
        self.photo_labels = list(labels) if labels is not None else list(range(len(photos)))

    def __len__(self) -> int:
        return self.length

    def box(self, i: int) -> tuple[int, int, int, int]:
        img = self.photos[i % len(self.photos)]
        rng = np.random.default_rng([self.seed, i])
        area = rng.uniform(*self.scale) * img.width * img.height
        side = max(1, min(int(round(area ** 0.5)), img.width, img.height))
        x, y = int(rng.integers(0, img.width - side + 1)), int(rng.integers(0, img.height - side + 1))
        return x, y, x + side, y + side

    def __getitem__(self, i: int):
        crop = self.photos[i % len(self.photos)].crop(self.box(i))
        return (self.transform(crop) if self.transform else crop), self.photo_labels[i % len(self.photos)]
