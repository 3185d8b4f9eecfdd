"""A GPU data path for ImageNet-style JPEG folders: workers read bytes, the device decodes and augments.

The CPU path (``data.build_transform("pretrain")`` on torchvision's ``ImageFolder``) decodes each JPEG with PIL
and crops it with a bicubic resize in a worker process; at ViT-B/16 speeds on an H100 that needs far more CPU
cores than a machine has. Here:

1. ``JpegFolder`` workers only read each file's raw bytes (a uint8 tensor) and its label;
   ``collate_bytes`` joins a batch's files into one tensor with their lengths (one shared-memory block per batch
   from a worker, not one per file); the loader pins it and cuts it back into one view per file.
2. ``decode_jpegs`` decodes the whole list at once with ``torchvision.io.decode_jpeg(..., device="cuda")``
   (nvJPEG, batched); on CPU the same call decodes on the CPU. Greyscale and CMYK JPEGs come out as RGB
   (``mode=RGB``); a file nvJPEG cannot decode (a PNG named .JPEG, as ImageNet has) is decoded on the CPU.
3. ``sample_crop_boxes`` draws every image's RandomResizedCrop box at once, with the distribution of
   torchvision's ``RandomResizedCrop.get_params`` (scale (0.2, 1), log-uniform ratio (3/4, 4/3), 10 tries, then
   the central crop), on the CPU from a seeded generator: the boxes do not depend on the device.
4. ``resized_crops`` cuts and resizes every box in a few ``torchvision.ops.roi_align`` calls over padded
   canvases (images of similar size share a canvas), then flips and normalises the whole batch on the device.

The resize is **bilinear** (``roi_align`` with ``aligned=True``: the sample points of ``F.interpolate(...,
mode="bilinear", align_corners=False)``), and when the crop is larger than the output it averages
ceil(crop / output) x ceil(crop / output) bilinear samples per output pixel (``sampling_ratio=-1``), a box
filter that stands in for antialiasing. **The CPU path is bicubic** (PIL, antialiased), as fb/mae's recipe;
the two are close but not identical. At the crop's border the bilinear samples may read the neighbouring
pixels of the image (crop-then-resize would repeat the crop's edge); beyond the image's border the edge is
repeated, as a resize would.

``choose_data_path`` picks between this path and the CPU one, for the trainer (``train.pretrain``) and the
benchmark (``perf.bench``, whose ``loader``, ``loader_pil`` and ``e2e`` workloads time them) alike: the GPU path
by default on CUDA for whole image folders, the CPU path otherwise (and on request). ``TensorLoader`` applies the
same batched augmentation to the bundled in-memory sets of the smoke and cpu scales (``train.common``).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.datasets.folder import find_classes, make_dataset
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.ops import roi_align

from .data import IMAGENET_MEAN, IMAGENET_STD, CheckedImageFolder, DataError, build_transform, dataset_info
from .errors import first_line

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png")
DATA_PATHS = ("auto", "gpu", "cpu")
JPEG_FOLDER_DATASETS = ("imagefolder", "imagenet")  # the datasets the GPU path can read: folders of JPEG files


# -------------------------------------------------------------------------------------------------------
# 1. bytes
class JpegFolder(torch.utils.data.Dataset):
    """An ImageFolder (``root/<class>/<image>``) whose samples are ``(bytes (B,) uint8 tensor, label int)``."""

    def __init__(self, root: str, extensions: Sequence[str] = IMG_EXTENSIONS):
        if not os.path.isdir(root):
            raise DataError(f"image folder {root} does not exist")
        try:
            self.classes, class_to_idx = find_classes(root)
            self.samples = make_dataset(root, class_to_idx, extensions=tuple(extensions))
        except (FileNotFoundError, RuntimeError) as e:
            raise DataError(f"no images under {root}: {first_line(e)}") from None
        self.targets = [s[1] for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        try:
            data = torch.from_numpy(np.fromfile(path, dtype=np.uint8))  # (B,) the file's bytes
        except OSError as e:
            raise DataError(f"unreadable image {path}: {e}") from None
        return data, label


def collate_bytes(batch):
    """[(bytes, label)] -> (the N files' bytes end to end (B,) uint8, their lengths (N,) int64, labels (N,) int64).

    One tensor a batch: a worker hands each tensor over in a shared-memory block that holds a file descriptor in
    both processes until it is freed, so a list of N files would hold N descriptors a batch, 16,384 for 16
    workers' 4 batches of 256 in flight, past a common limit of 1,024 ("Too many open files"). ``split_bytes``
    cuts it back into one view per file."""
    return (torch.cat([b for b, _ in batch]), torch.tensor([b.numel() for b, _ in batch], dtype=torch.int64),
            torch.tensor([lab for _, lab in batch], dtype=torch.int64))


def split_bytes(flat: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """``collate_bytes``'s batch back as one (B_n,) view of ``flat`` per file (contiguous, as nvJPEG needs)."""
    return list(torch.split(flat, lengths.tolist()))


# -------------------------------------------------------------------------------------------------------
# 2. decode
# how many images each way of ``decode_jpegs`` decoded in this process: in one batch on the device, alone on the
# device (a file the batch rejected), or on the CPU (a file the device could not decode); the benchmark records them,
# so that a GPU data path whose decoder fell back to the CPU says so
DECODED = {"batched": 0, "alone": 0, "cpu": 0}


_DECODE_STREAMS: dict[torch.device, "torch.cuda.Stream"] = {}


def decode_jpegs(datas: list[torch.Tensor], device) -> list[torch.Tensor]:
    """N byte tensors (on the CPU) -> N images (3, H_n, W_n) uint8 RGB on ``device``, decoded in one batch.

    Greyscale and CMYK JPEGs are converted to RGB; a file the batched decoder rejects is decoded alone (and on
    the CPU when the device cannot), so one odd file does not stop a batch (``DECODED`` counts each way).

    On CUDA the images are allocated on a stream of the decoder's own (``decode_stream``), not on the caller's:
    torchvision's nvJPEG decoder allocates its outputs on the current stream but writes them from a stream of its
    own, which does not wait for that stream's queued work, so on the caller's stream it could write memory that a
    queued kernel (the previous step's) still reads. No kernel runs on the decode stream (RGB mode: torchvision's
    greyscale ``clone`` of the UNCHANGED mode would run one there), and its images are marked as used by the caller's
    stream (``record_stream``): PyTorch's own caching allocator hands their memory out again only once the host has
    seen the caller's work on them complete, whatever order nvJPEG writes in. The caller's stream waits for the
    decode, and the host does not wait for the training step: the next batch decodes while the previous step runs.
    Under the ``cudaMallocAsync`` allocator, which frees in stream order instead, it waits for the caller's stream
    first, as before.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return _decode(datas, device)
    caller = torch.cuda.current_stream(device)
    if torch.cuda.get_allocator_backend() != "native":
        caller.synchronize()
        return _decode(datas, device)
    side = decode_stream(device)
    with torch.cuda.stream(side):
        out = _decode(datas, device)
    caller.wait_stream(side)
    for im in out:
        im.record_stream(caller)
    return out


def decode_stream(device) -> "torch.cuda.Stream":
    """The stream ``decode_jpegs`` allocates its images on, one per CUDA device (drawn from PyTorch's pool of
    streams, which other libraries share: a stream another one also draws can only make each wait for the other)."""
    device = torch.device(device)
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device not in _DECODE_STREAMS:
        _DECODE_STREAMS[device] = torch.cuda.Stream(device=device)
    return _DECODE_STREAMS[device]


def _decode(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders in favour of TorchCodec; they remain the batched nvJPEG path
        warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities of TorchVision.*")
        try:
            out = decode_jpeg(list(datas), mode=ImageReadMode.RGB, device=device)
            DECODED["batched"] += len(out)
        except RuntimeError:
            out = []
            for d in datas:
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
                    DECODED["alone"] += 1
                except RuntimeError:
                    try:
                        out.append(decode_image(d.cpu(), mode=ImageReadMode.RGB).to(device, non_blocking=True))
                        DECODED["cpu"] += 1
                    except RuntimeError as e:
                        raise DataError(f"cannot decode an image of {d.numel()} bytes: {e}") from None
    return list(out)


# -------------------------------------------------------------------------------------------------------
# 3. crop boxes
def sample_crop_boxes(sizes: torch.Tensor, scale: tuple[float, float] = (0.2, 1.0),
                      ratio: tuple[float, float] = (3 / 4, 4 / 3), generator: torch.Generator | None = None,
                      attempts: int = 10) -> torch.Tensor:
    """RandomResizedCrop boxes for a batch, vectorised ``torchvision.transforms.RandomResizedCrop.get_params``.

    sizes: (N, 2) int, each image's (H, W). Returns boxes (N, 4) int64 as (top i, left j, height h, width w).

    For each image, ``attempts`` candidates: area fraction uniform in ``scale``, aspect ratio log-uniform in
    ``ratio``, w = round(sqrt(area * r)), h = round(sqrt(area / r)); the first that fits is placed uniformly
    at random. If none fits, the central crop with the ratio clamped to ``ratio`` (torchvision's fallback).
    """
    sizes = torch.as_tensor(sizes, dtype=torch.float64).reshape(-1, 2)
    N = sizes.shape[0]
    H, W = sizes[:, 0], sizes[:, 1]  # (N,)
    area = (H * W)[:, None]  # (N, 1)
    u_area = torch.rand(N, attempts, generator=generator, dtype=torch.float64)
    u_ratio = torch.rand(N, attempts, generator=generator, dtype=torch.float64)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u_area)  # (N, attempts)
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(lo + (hi - lo) * u_ratio)
    w = torch.round(torch.sqrt(target_area * aspect))  # round half to even, as Python's round
    h = torch.round(torch.sqrt(target_area / aspect))
    fits = (w > 0) & (w <= W[:, None]) & (h > 0) & (h <= H[:, None])  # (N, attempts)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # the first attempt that fits (0 if none)
    ok = fits.any(1)
    h_s, w_s = h.gather(1, first)[:, 0], w.gather(1, first)[:, 0]
    # the fallback: the central crop, ratio clamped
    in_ratio = W / H
    w_fb = torch.where(in_ratio > ratio[1], torch.round(H * ratio[1]), W)
    h_fb = torch.where(in_ratio < ratio[0], torch.round(W / ratio[0]), H)
    h_s, w_s = torch.where(ok, h_s, h_fb), torch.where(ok, w_s, w_fb)
    u_i = torch.rand(N, generator=generator, dtype=torch.float64)
    u_j = torch.rand(N, generator=generator, dtype=torch.float64)
    i = torch.where(ok, torch.floor(u_i * (H - h_s + 1)), torch.div(H - h_s, 2, rounding_mode="floor"))
    j = torch.where(ok, torch.floor(u_j * (W - w_s + 1)), torch.div(W - w_s, 2, rounding_mode="floor"))
    return torch.stack([i, j, h_s, w_s], 1).to(torch.int64)


# -------------------------------------------------------------------------------------------------------
# 4. crop, resize, flip, normalise on the device
def _buckets(sizes: list[tuple[int, int]], step: int) -> dict[tuple[int, int], list[int]]:
    """Group image indices by size rounded up to ``step`` pixels: each group shares one canvas."""
    out: dict[tuple[int, int], list[int]] = {}
    for n, (h, w) in enumerate(sizes):
        out.setdefault((-(-(h + 1) // step), -(-(w + 1) // step)), []).append(n)
    return out


def resized_crops(images: list[torch.Tensor], boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None,
                  mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                  work_dtype: torch.dtype | None = None, bucket: int = 128) -> torch.Tensor:
    """Crop each box, resize it to ``size`` x ``size`` (bilinear), flip where asked, normalise.

    images: N tensors (C, H_n, W_n) uint8 on one device; boxes: (N, 4) (i, j, h, w) in pixels;
    flip: (N,) bool or None. Returns (N, C, size, size) float32 on the images' device, ``(x / 255 - mean) /
    std`` per channel (mean/std None: x / 255).

    Images are padded (their last row and column repeated once, then zeros) into one canvas per size bucket
    of ``bucket`` pixels, so that a batch with one huge image does not pad every other image to its size.
    """
    N = len(images)
    if N == 0:
        raise ValueError("resized_crops needs at least one image")
    device = images[0].device
    C = images[0].shape[0]
    if work_dtype is None:
        work_dtype = torch.float16 if device.type == "cuda" else torch.float32  # uint8 values are exact in fp16
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(N, 4)
    # roi_align boxes: (x1, y1, x2, y2) in pixel units; aligned=True shifts by -0.5, giving the sample points
    # x = j - 0.5 + (k + 0.5) * w / size of a half-pixel-centred bilinear resize
    rois_all = torch.stack([b[:, 1], b[:, 0], b[:, 1] + b[:, 3], b[:, 0] + b[:, 2]], 1)  # (N, 4)
    groups = _buckets(sizes, bucket)
    out = None if len(groups) == 1 else torch.empty(N, C, size, size, device=device, dtype=work_dtype)
    for idx in groups.values():
        Hc = max(sizes[n][0] for n in idx) + 1
        Wc = max(sizes[n][1] for n in idx) + 1
        # an image that the batch holds more than once (the same tensor: a few photographs cropped many times) goes
        # on the canvas once, and each of its boxes reads that slot
        slot_of: dict[int, int] = {}
        slots = [slot_of.setdefault(id(images[n]), len(slot_of)) for n in idx]
        image_of: dict[int, int] = {}  # slot -> an index of its image
        for n, k in zip(idx, slots):
            image_of.setdefault(k, n)
        canvas = torch.zeros(len(image_of), C, Hc, Wc, device=device, dtype=work_dtype)
        # images of the same size are padded together
        same: dict[tuple[int, int], list[int]] = {}
        for k, n in image_of.items():
            same.setdefault(sizes[n], []).append(k)
        for (h, w), ks in same.items():
            stack = torch.stack([images[image_of[k]] for k in ks]).to(work_dtype)  # (n, C, h, w)
            stack = F.pad(stack, (0, 1, 0, 1), mode="replicate")  # (n, C, h + 1, w + 1): edge repeated
            if len(ks) == len(image_of):
                canvas[:, :, :h + 1, :w + 1] = stack
            else:
                canvas[_to(torch.tensor(ks), device), :, :h + 1, :w + 1] = stack
        sel = torch.tensor(idx)
        rois = torch.cat([torch.tensor(slots, dtype=torch.float32)[:, None], rois_all[sel]], 1)
        crops = roi_align(canvas, rois.to(device=device, dtype=work_dtype, non_blocking=True), (size, size),
                          spatial_scale=1.0, sampling_ratio=-1, aligned=True)  # (n, C, size, size)
        if out is None:
            out = crops
        else:
            out[_to(sel, device)] = crops
    x = out.float()
    if flip is not None:
        flip = _to(torch.as_tensor(flip, dtype=torch.bool), device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if mean is None:
        return x / 255.0
    m = _to(torch.tensor(mean, dtype=torch.float32), device)[:, None, None] * 255.0
    s = _to(torch.tensor(std, dtype=torch.float32), device)[:, None, None] * 255.0
    return (x - m) / s


def _to(t: torch.Tensor, device) -> torch.Tensor:
    """A small host tensor on ``device`` without waiting for the device's queued work: a blocking copy to CUDA
    synchronises the stream; this one is queued (the driver reads a pageable source before the call returns; CUDA
    documents that it may wait for the stream to stage it)."""
    return t.to(device, non_blocking=True)


class GpuAugment:
    """The pretraining augmentation for a decoded batch, on its device: RandomResizedCrop + flip + normalise.

    ``__call__(images)`` -> (N, 3, img_size, img_size) float32. The random numbers come from ``generator``
    (CPU), so the crops are the same whatever the device. ``work_dtype``: the crop's arithmetic (``resized_crops``;
    None: fp16 on CUDA, whose ``roi_align`` then rounds sample positions to 1/8 px at 128-255 px, fp32 elsewhere).
    """

    def __init__(self, img_size: int, scale: tuple[float, float] = (0.2, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: float = 0.5,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD, seed: int = 0,
                 work_dtype: torch.dtype | None = None):
        self.img_size, self.scale, self.ratio, self.hflip = img_size, tuple(scale), tuple(ratio), hflip
        self.mean, self.std, self.work_dtype = mean, std, work_dtype
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, sizes: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (boxes (N, 4) (i, j, h, w), flip (N,) bool)."""
        boxes = sample_crop_boxes(torch.tensor(sizes).reshape(-1, 2), self.scale, self.ratio, self.generator)
        flip = torch.rand(len(boxes), generator=self.generator) < self.hflip
        return boxes, flip

    def __call__(self, images: list[torch.Tensor]) -> torch.Tensor:
        boxes, flip = self.sample([tuple(im.shape[-2:]) for im in images])
        return resized_crops(images, boxes, self.img_size, flip, self.mean, self.std, self.work_dtype)


# -------------------------------------------------------------------------------------------------------
# the loader
class GpuLoader:
    """Batches ``(imgs (N, 3, S, S) float32, labels (N,) int64)`` on ``device`` from a JPEG folder.

    Iterating it reads bytes in ``num_workers`` persistent worker processes (pinned on CUDA), then decodes and
    augments each batch on ``device``. Has ``len`` and ``set_epoch`` like a DataLoader with a sampler.
    """

    def __init__(self, dataset: JpegFolder, batch_size: int, device, augment: GpuAugment, *, num_workers: int = 8,
                 sampler=None, shuffle: bool = True, drop_last: bool = True, seed: int = 0,
                 prefetch_factor: int = 4):
        self.device = torch.device(device)
        self.augment = augment
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        kw = dict(num_workers=num_workers, collate_fn=collate_bytes, drop_last=drop_last,
                  pin_memory=self.device.type == "cuda", generator=gen)
        if num_workers > 0:
            kw.update(persistent_workers=True, prefetch_factor=prefetch_factor)
        if sampler is not None:
            kw["sampler"] = sampler
        else:
            kw["shuffle"] = shuffle
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, **kw)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.augment.generator.manual_seed(self.seed * 1_000_003 + epoch)
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for flat, lengths, labels in self.loader:
            imgs = self.augment(decode_jpegs(split_bytes(flat, lengths), self.device))
            yield imgs, labels.to(self.device, non_blocking=True)


class TensorLoader:
    """Batches ``(imgs (N, 3, S, S) float32, labels (N,) int64)`` from images held in memory, augmented a batch at
    a time: one ``GpuAugment`` call (RandomResizedCrop boxes drawn at once, one ``roi_align``, flip, normalise)
    instead of a PIL transform per image, on any device. For the bundled sets (the smoke, cpu and gpu scales), where
    the per-image PIL path cost about a fifth of a training step on one CPU thread (0.36 ms an image). On a GPU the
    images are copied there once and cropped there.

    images: a list of (3, H, W) uint8 tensors, the same size (MNIST-5k) or not (photos); ``picks``: the image
    each sample index draws from (``index % len(images)`` for the photo sets, the index itself otherwise);
    labels: one per image. Has ``len`` and ``set_epoch`` like a DataLoader with a sampler; the epoch's order comes
    from the sampler, its crops from a generator reseeded by ``set_epoch``, so a resumed epoch replays exactly.
    """

    def __init__(self, images: list[torch.Tensor], labels: torch.Tensor, batch_size: int, augment: "GpuAugment",
                 sampler, seed: int = 0, cycle: bool = False, device="cpu"):
        self.device = torch.device(device)
        # on a GPU the images live there and are cropped there: a batch of the gpu scale's (256 crops of its
        # photographs) took 89 ms of one CPU thread, measured (roi_align half of it), for each step of a small model
        self.images = images if self.device.type == "cpu" else [im.to(self.device) for im in images]
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.batch_size, self.augment, self.sampler, self.seed = batch_size, augment, sampler, seed
        self.cycle = cycle

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size  # drop_last

    def set_epoch(self, epoch: int) -> None:
        self.augment.generator.manual_seed(self.seed * 1_000_003 + epoch)
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = list(self.sampler)
        n = len(self.images)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            picks = [i % n for i in idx] if self.cycle else idx
            imgs = self.augment([self.images[i] for i in picks])
            yield imgs.to(self.device), _to(self.labels[torch.tensor(picks)], self.device)


def cpu_pretrain_loader(root: str, batch_size: int, img_size: int, device, *, num_workers: int = 8,
                        scale: tuple[float, float] = (0.2, 1.0), hflip: float = 0.5, seed: int = 0,
                        shuffle: bool = True, drop_last: bool = True) -> torch.utils.data.DataLoader:
    """The CPU path (fb/mae's): PIL decode + RandomResizedCrop (bicubic) + flip + normalise in workers."""
    tf = build_transform("pretrain", dataset_info("imagefolder"), img_size, crop_scale=scale, hflip=hflip)
    ds = CheckedImageFolder(root, tf)
    kw = dict(num_workers=num_workers, drop_last=drop_last, shuffle=shuffle,
              pin_memory=torch.device(device).type == "cuda", generator=torch.Generator().manual_seed(seed))
    if num_workers > 0:
        kw.update(persistent_workers=True, prefetch_factor=4)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, **kw)


def choose_data_path(requested: str, device, dataset: str = "imagefolder", limit: int | None = None) -> str:
    """'gpu' or 'cpu': the data path of pretraining batches, chosen here for every caller (the trainer through
    ``train.pretrain.build``, the benchmark's ``e2e`` workload).

    requested: 'auto' | 'gpu' | 'cpu' (a config's ``data.data_path``, the benchmark's ``--data-path``). 'auto' is
    the GPU path on CUDA when the data are a whole folder of JPEGs (``dataset`` imagefolder or imagenet, no
    ``limit``), the CPU path otherwise; 'gpu' and 'cpu' are taken as asked (``configs.validate`` refuses
    ``data.data_path=gpu`` for a run off CUDA or on other data; the benchmark may time the GPU path on the CPU).
    """
    if requested not in DATA_PATHS:
        raise DataError(f"unknown data path {requested!r}; choose one of {', '.join(DATA_PATHS)}")
    if requested != "auto":
        return requested
    whole_folder = dataset in JPEG_FOLDER_DATASETS and limit is None
    return "gpu" if whole_folder and torch.device(device).type == "cuda" else "cpu"


# -------------------------------------------------------------------------------------------------------
# synthetic JPEGs for the loader benchmark
def write_synthetic_jpegs(root: str, num_images: int, size: tuple[int, int] = (500, 375), num_classes: int = 10,
                          seed: int = 0, quality: int = 90, grey_every: int = 0, start: int = 0) -> dict:
    """Write ``num_images`` random smooth JPEGs of ``size`` = (width, height) (ImageNet's typical 500 x 375) as
    ``root/train/class_XXX/img_XXXXXX.jpg``. Each image is a sum of random noise at five scales, upsampled
    bicubically: smooth shapes with some texture, so that file sizes (about 80 KB at quality 90) and decode
    times are near real photographs' (ImageNet's average is about 110 KB).

    grey_every: every k-th image is saved greyscale (0: none). start: the index of the first image (images are
    seeded one by one, so that several processes can write disjoint ranges). Returns {"num_images",
    "mean_bytes", "root"}.
    """
    W, H = size
    total = 0
    for n in range(start, start + num_images):
        rng = np.random.default_rng([seed, n])
        c = n % num_classes
        d = os.path.join(root, "train", f"class_{c:03d}")
        os.makedirs(d, exist_ok=True)
        img = np.zeros((H, W, 3), np.float32)
        for k, weight in ((4, 0.35), (16, 0.2), (64, 0.15), (W // 2, 0.15), (W, 0.15)):
            small = rng.random((max(1, k * H // W), k, 3), dtype=np.float32)
            layer = Image.fromarray((small * 255).astype(np.uint8)).resize((W, H), Image.BICUBIC)
            img += weight * np.asarray(layer, np.float32)
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        if grey_every and n % grey_every == grey_every - 1:
            pil = pil.convert("L")
        path = os.path.join(d, f"img_{n:06d}.jpg")
        pil.save(path, quality=quality)
        total += os.path.getsize(path)
    return {"num_images": num_images, "mean_bytes": total / max(num_images, 1), "root": root}
