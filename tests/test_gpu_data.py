"""The GPU data path (``lcmae_core.gpu_data``) on the CPU: decoding, crop boxes, the roi_align crop, flips,
normalisation, the loader the trainer builds, and the choice between the GPU and the CPU path."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from lcmae_core import configs
from lcmae_core.data import IMAGENET_MEAN, IMAGENET_STD, DataError
from lcmae_core import gpu_data as G
from lcmae_core.train import common, pretrain
from lcmae_core.train.distributed import EpochSampler


def jpeg_bytes(img: Image.Image, fmt: str = "JPEG") -> torch.Tensor:
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=95)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


def smooth_rgb(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (rng.random((3, 4, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BICUBIC)


# -------------------------------------------------------------------------------------------------------
def test_decode_rgb_grey_cmyk_and_png_all_come_out_rgb():
    rgb = smooth_rgb(50, 40)
    datas = [jpeg_bytes(rgb), jpeg_bytes(rgb.convert("L")), jpeg_bytes(rgb.convert("CMYK")),
             jpeg_bytes(smooth_rgb(30, 20), "PNG")]  # a PNG named .JPEG, as ImageNet has
    before = dict(G.DECODED)
    out = G.decode_jpegs(datas, "cpu")
    assert [tuple(o.shape) for o in out] == [(3, 40, 50)] * 3 + [(3, 20, 30)]
    # the PNG fails the batch: the JPEGs are decoded alone, the PNG by the general decoder, and the counts say so
    assert {k: G.DECODED[k] - before[k] for k in before} == {"batched": 0, "alone": 3, "cpu": 1}
    G.decode_jpegs(datas[:2], "cpu")
    assert G.DECODED["batched"] - before["batched"] == 2
    assert all(o.dtype == torch.uint8 for o in out)
    grey = out[1].int()
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])  # greyscale replicated
    # CMYK decodes to the same picture, up to JPEG loss
    assert (out[2].float() - out[0].float()).abs().mean() < 12


def test_undecodable_bytes_raise_one_data_error():
    with pytest.raises(DataError, match="cannot decode"):
        G.decode_jpegs([torch.tensor([1, 2, 3, 4], dtype=torch.uint8)], "cpu")


# -------------------------------------------------------------------------------------------------------
def test_crop_boxes_inside_image_and_within_scale_and_ratio():
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([[375, 500], [500, 375], [224, 224], [100, 700]] * 500)
    boxes = G.sample_crop_boxes(sizes, (0.2, 1.0), (3 / 4, 4 / 3), g)
    i, j, h, w = boxes.T
    H, W = sizes.T
    assert boxes.dtype == torch.int64 and boxes.shape == (2000, 4)
    assert (i >= 0).all() and (j >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (i + h <= H).all() and (j + w <= W).all()
    # area and ratio within bounds, up to the rounding of h and w to whole pixels (+-0.5 each)
    frac = (h * w).double() / (H * W)
    fallback = (h == H) | (w == W)  # fallback crops are central and clamp the ratio
    assert (frac[~fallback] >= 0.2 * (1 - 0.02)).all() and (frac <= 1.0).all()
    ratio = w.double() / h.double()
    slack_lo = 3 / 4 * (1 - 1.0 / h.double()) - 1.0 / h.double()
    slack_hi = 4 / 3 * (1 + 1.0 / h.double()) + 1.0 / h.double()
    assert (ratio >= slack_lo).all() and (ratio <= slack_hi).all()


def test_crop_boxes_match_torchvision_get_params_in_distribution():
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    img = torch.zeros(3, 375, 500)
    ref = torch.tensor([RandomResizedCrop.get_params(img, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)])
    ours = G.sample_crop_boxes(torch.tensor([[375, 500]] * 4000), generator=torch.Generator().manual_seed(1))
    for col in range(4):  # i, j, h, w
        r, o = ref[:, col].double(), ours[:, col].double()
        assert abs(r.mean() - o.mean()) < 0.05 * r.mean() + 2, col
        assert abs(r.std() - o.std()) < 0.08 * r.std() + 2, col


def test_crop_boxes_fallback_is_the_central_crop_with_clamped_ratio():
    # a 10 x 1000 image: no crop of ratio <= 4/3 and area >= 0.2 fits; torchvision falls back to the centre
    boxes = G.sample_crop_boxes(torch.tensor([[10, 1000], [1000, 10]]), generator=torch.Generator().manual_seed(0))
    assert boxes[0].tolist() == [0, (1000 - 13) // 2, 10, 13]  # w = round(10 * 4/3)
    assert boxes[1].tolist() == [(1000 - 13) // 2, 0, 13, 10]  # h = round(10 / (3/4))


# -------------------------------------------------------------------------------------------------------
def random_uint8(c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed)) * 255).round().to(torch.uint8)


def torchvision_bilinear(img, box, size, antialias=False):
    i, j, h, w = box
    return TF.resized_crop(img.float(), i, j, h, w, [size, size], interpolation=TF.InterpolationMode.BILINEAR,
                           antialias=antialias) / 255.0


def test_roi_align_crop_of_the_whole_image_is_torchvision_bilinear_resize_exactly():
    img = random_uint8(3, 30, 40)
    ours = G.resized_crops([img], torch.tensor([[0, 0, 30, 40]]), 64, None, mean=None)[0]
    ref = torchvision_bilinear(img, (0, 0, 30, 40), 64)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_roi_align_crop_equals_the_region_inside_the_border():
    """An inner crop (upscaled) equals crop-then-resize except on its outermost output pixels, where the
    bilinear samples may read the pixels just outside the crop."""
    img = random_uint8(3, 60, 80, seed=1)
    box = (10, 7, 30, 40)
    ours = G.resized_crops([img], torch.tensor([box]), 64, None, mean=None)[0]
    ref = torchvision_bilinear(img, box, 64)
    torch.testing.assert_close(ours[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1], atol=1e-5, rtol=0)
    # a crop at the bottom-right corner: the image's own edge is repeated, as a resize does
    box = (30, 40, 30, 40)
    ours = G.resized_crops([img], torch.tensor([box]), 64, None, mean=None)[0]
    ref = torchvision_bilinear(img, box, 64)
    torch.testing.assert_close(ours[:, 1:, 1:], ref[:, 1:, 1:], atol=1e-5, rtol=0)


def test_roi_align_downscale_is_close_to_an_antialiased_resize():
    img = torch.from_numpy(np.array(smooth_rgb(400, 300, seed=2))).permute(2, 0, 1).contiguous()
    box = (20, 30, 240, 320)
    ours = G.resized_crops([img], torch.tensor([box]), 64, None, mean=None)[0]
    ref = torchvision_bilinear(img, box, 64, antialias=True)
    assert (ours - ref).abs().mean() < 0.01


def test_mixed_sizes_share_canvases_and_each_crop_is_its_own():
    imgs = [random_uint8(3, 40, 50, 0), random_uint8(3, 300, 200, 1), random_uint8(3, 40, 50, 2),
            random_uint8(3, 33, 21, 3)]
    boxes = torch.tensor([[0, 0, 40, 50], [10, 20, 100, 90], [5, 5, 20, 30], [0, 0, 33, 21]])
    batch = G.resized_crops(imgs, boxes, 32, None, mean=None, bucket=64)
    for n in range(4):
        alone = G.resized_crops([imgs[n]], boxes[n:n + 1], 32, None, mean=None)
        torch.testing.assert_close(batch[n], alone[0], atol=1e-6, rtol=0)


def test_an_image_the_batch_holds_many_times_is_cropped_as_if_each_were_its_own(monkeypatch):
    """The photographs' batches crop a few images many times: each goes on its canvas once, and every crop comes
    out bit for bit as from copies of it."""
    canvases = []
    roi_align = G.roi_align
    monkeypatch.setattr(G, "roi_align", lambda canvas, *a, **k: canvases.append(len(canvas)) or roi_align(canvas, *a,
                                                                                                            **k))
    photos = [random_uint8(3, 40, 50, 0), random_uint8(3, 300, 200, 1), random_uint8(3, 37, 50, 2)]
    picks = [0, 1, 0, 2, 2, 1, 0, 0, 2]
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([tuple(photos[i].shape[-2:]) for i in picks])
    boxes = G.sample_crop_boxes(sizes, (0.2, 1.0), (3 / 4, 4 / 3), g)
    flip = torch.arange(len(picks)) % 2 == 0
    shared = G.resized_crops([photos[i] for i in picks], boxes, 24, flip, bucket=64)
    assert sorted(canvases) == [1, 2]  # the large photograph alone, the two small ones together, each once
    copies = G.resized_crops([photos[i].clone() for i in picks], boxes, 24, flip, bucket=64)
    assert sorted(canvases[2:]) == [2, 7]  # copies are distinct images: one slot per crop
    assert torch.equal(shared, copies)


def test_flip_and_normalisation():
    img = random_uint8(3, 40, 40)
    box = torch.tensor([[0, 0, 40, 40], [0, 0, 40, 40]])
    out = G.resized_crops([img, img], box, 40, torch.tensor([False, True]))
    torch.testing.assert_close(out[1], out[0].flip(-1))
    # a flat image normalises to (v / 255 - mean) / std per channel
    flat = torch.full((3, 20, 30), 100, dtype=torch.uint8)
    out = G.resized_crops([flat], torch.tensor([[2, 3, 10, 12]]), 16, None)
    expect = (100 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out[0].mean((1, 2)), expect.float(), atol=1e-5, rtol=0)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 16, 16)


def test_augment_is_seeded_and_flips_about_half():
    aug = G.GpuAugment(16, seed=3, hflip=0.5)
    boxes, flip = aug.sample([(375, 500)] * 1000)
    assert 400 < int(flip.sum()) < 600
    again = G.GpuAugment(16, seed=3).sample([(375, 500)] * 1000)
    assert torch.equal(boxes, again[0]) and torch.equal(flip, again[1])


# -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    info = G.write_synthetic_jpegs(str(root), 12, size=(80, 60), num_classes=3, grey_every=4)
    assert info["num_images"] == 12
    return root


def folder_config(root, *changes):
    """The smoke MAE pretraining on the JPEG folder ``root`` (``root/train/<class>/*.jpg``), every image."""
    return configs.apply_overrides(configs.preset("mae", "smoke"),
                                   ["data.dataset=imagefolder", f"data.root={root}", "data.limit=none", *changes])


def test_the_trainers_gpu_loader_yields_normalised_batches_with_labels(jpeg_folder):
    ds = G.JpegFolder(str(jpeg_folder / "train"))
    assert len(ds) == 12 and ds.classes == ["class_000", "class_001", "class_002"]
    data, label = ds[0]
    assert data.dtype == torch.uint8 and data.dim() == 1 and label == 0
    for workers in (0, 2):
        cfg = folder_config(jpeg_folder, f"data.num_workers={workers}")
        S = cfg.model.img_size
        folder, make_loader = pretrain.gpu_train_data(cfg, torch.device("cpu"))  # what fit builds once
        loader = make_loader(EpochSampler(len(folder), cfg.seed), 4)
        assert isinstance(loader, G.GpuLoader) and len(loader) == 3
        loader.set_epoch(0)
        batches = list(loader)
        assert len(batches) == 3
        for imgs, labels in batches:
            assert imgs.shape == (4, 3, S, S) and imgs.dtype == torch.float32
            assert labels.shape == (4,) and labels.dtype == torch.int64
            assert imgs.abs().max() < 3.0  # normalised
        assert sorted(torch.cat([lab for _, lab in batches]).tolist()) == sorted(ds.targets)


def test_the_data_path_is_gpu_only_for_whole_jpeg_folders_on_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert G.choose_data_path("auto", cpu) == "cpu"
    assert G.choose_data_path("auto", cuda) == "gpu"
    assert G.choose_data_path("auto", cuda, "imagenet") == "gpu"
    assert G.choose_data_path("auto", cuda, "imagefolder", limit=100) == "cpu"  # a subset: the PIL path
    assert G.choose_data_path("auto", cuda, "mnist5k") == "cpu"
    assert G.choose_data_path("cpu", cuda) == "cpu"
    assert G.choose_data_path("gpu", cpu) == "gpu"  # as asked (the benchmark times the GPU path on a CPU)
    with pytest.raises(DataError, match="unknown data path"):
        G.choose_data_path("fast", cpu)


def test_off_cuda_the_trainer_takes_the_cpu_path(jpeg_folder):
    cfg = folder_config(jpeg_folder)
    job = pretrain.build(cfg, torch.device("cpu"))
    assert job.make_loader is None  # fit builds a DataLoader over the PIL ImageFolder each epoch
    loader = torch.utils.data.DataLoader(job.train_set, batch_size=4)
    imgs, labels = next(iter(loader))
    assert imgs.shape == (4, 3, cfg.model.img_size, cfg.model.img_size) and labels.shape == (4,)


# ------------------------------------------------------------------------------------------------------------
# the batched in-memory path of the smoke and cpu presets (data.augment=batched)
def test_tensor_loader_batches_are_deterministic_per_epoch_and_labelled():
    imgs = [torch.full((3, 8, 8), i, dtype=torch.uint8) for i in range(10)]  # image i is the constant i
    labels = torch.arange(10) + 100
    aug = G.GpuAugment(8, (0.5, 1.0), hflip=0.5, mean=None, std=None, seed=0)
    loader = G.TensorLoader(imgs, labels, 4, aug, EpochSampler(10, seed=0), seed=7)
    assert len(loader) == 2  # drop_last
    loader.set_epoch(3)
    first = list(loader)
    loader.set_epoch(3)
    again = list(loader)
    for (x, y), (x2, y2) in zip(first, again):
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32
        # a constant image stays constant under any crop: each sample's value names its image, its label agrees
        which = (x[:, 0, 0, 0] * 255).round().long()
        assert torch.equal(labels[which], y) and torch.allclose(x, x[:, :1, :1, :1].expand_as(x))
    loader.set_epoch(4)
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, loader))  # another epoch, another order


def test_batched_loader_for_the_presets_and_its_validation():
    cfg = configs.preset("mae", "smoke")
    assert cfg.data.augment == "auto" and configs.augment_backend(cfg) == "batched"
    assert configs.augment_backend(configs.preset("mae", "cifar")) == "pil"  # CIFAR-10: torchvision's transforms
    assert configs.augment_backend(configs.apply_overrides(configs.preset("finetune", "cpu"),
                                                           ["randaug=rand-m9-mstd0.5"])) == "pil"
    ds = common.train_dataset(cfg, "pretrain")
    make = common.batched_loader(cfg, ds, torch.device("cpu"))
    loader = make(EpochSampler(len(ds), 0), 32)
    loader.set_epoch(0)
    x, y = next(iter(loader))
    assert x.shape == (32, 3, 28, 28) and y.shape == (32,) and int(y.min()) >= 0
    assert common.batched_loader(configs.apply_overrides(cfg, ["data.augment=pil"]), ds, torch.device("cpu")) is None
    assert configs.run_name(configs.apply_overrides(cfg, ["data.augment=batched"])) == configs.run_name(cfg)
    # hashed (the crops differ), and refused where it cannot apply
    assert configs.run_name(cfg) != configs.run_name(configs.apply_overrides(cfg, ["data.augment=pil"]))
    with pytest.raises(configs.ConfigError, match="data.augment"):
        configs.validate(configs.apply_overrides(cfg, ["data.augment=fast"]))
    with pytest.raises(configs.ConfigError, match="bundled sets"):
        configs.validate(configs.apply_overrides(configs.preset("mae", "cifar"), ["data.augment=batched"]))
    with pytest.raises(configs.ConfigError, match="RandAugment"):
        configs.validate(configs.apply_overrides(configs.preset("finetune", "smoke"),
                                                 ["randaug=rand-m9-mstd0.5", "data.augment=batched"]))


# -------------------------------------------------------------------------------------------------------
# on a GPU (skipped here; bench/gpu_suite.sh runs them on the device before it times the data path)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _busy(cycles: int = 500_000_000) -> None:
    """Queue a fraction of a second of work on the current stream (a kernel that spins ``cycles`` clock cycles,
    about a quarter of a second at 2 GHz, whatever the matmul precision), then kernels that write blocks the size
    of a decoded 500x375 picture (375 x 375 floats, 562,500 bytes) behind it, and free those blocks: the allocator
    then holds memory whose queued writers have not run when the decoder asks for its images' memory."""
    torch.cuda._sleep(cycles)
    writers = [torch.rand(375, 375, device="cuda") for _ in range(32)]
    for w in writers:
        w.add_(1.0)  # runs after the spin


@cuda
def test_decode_on_the_gpu_while_the_stream_is_busy_gives_the_cpu_pictures():
    """Two hazards of nvJPEG writing from a stream of its own: memory the caller's stream freed with its writers still
    queued (``_busy``), and a picture the caller's queued kernels still read when the next batch is decoded (each
    picture's mean is taken behind the busy work, after which the pictures are dropped and another batch of the same
    sizes is decoded at once)."""
    first = [jpeg_bytes(smooth_rgb(500, 375, seed=i)) for i in range(16)]
    second = [jpeg_bytes(smooth_rgb(500, 375, seed=100 + i)) for i in range(16)]
    want = {id(d): G.decode_jpegs([d], "cpu")[0].float() for d in first + second}
    for _ in range(4):
        _busy()
        imgs = G.decode_jpegs(first, "cuda")
        _busy()
        means = torch.stack([im.float().mean() for im in imgs])  # queued behind the busy work
        del imgs
        again = G.decode_jpegs(second, "cuda")  # memory of the same sizes, asked for while the means are queued
        torch.cuda.synchronize()
        for m, d in zip(means.cpu(), first):
            assert abs(float(m) - float(want[id(d)].mean())) < 1  # nvJPEG and libjpeg round differently
        for g, d in zip(again, second):
            assert g.shape == want[id(d)].shape and (g.float().cpu() - want[id(d)]).abs().mean() < 2


@cuda
def test_decode_and_crop_on_the_gpu_never_wait_for_the_device():
    # two size buckets, each with two sizes: both ways of filling a canvas, and the gather of the buckets' crops
    datas = [jpeg_bytes(smooth_rgb(w, 375, seed=i)) for i, w in enumerate([500, 480, 360, 340] * 2)]
    assert len(G._buckets([(375, w) for w in [500, 480, 360, 340]], 128)) == 2
    aug = G.GpuAugment(64)
    aug(G.decode_jpegs(datas, "cuda"))  # the first call creates the decoder's handles and loads the kernels
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    _busy()
    end.record()
    torch.cuda.set_sync_debug_mode("error")  # a PyTorch call that waits for the device raises
    t0 = time.perf_counter()
    try:
        imgs = aug(G.decode_jpegs(datas, "cuda"))
    finally:
        host_ms = 1e3 * (time.perf_counter() - t0)
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    busy_ms = start.elapsed_time(end)
    # the host was back long before the queued work ran: it waited neither through PyTorch nor behind its back
    assert host_ms < busy_ms / 2, (host_ms, busy_ms)
    assert imgs.shape == (8, 3, 64, 64) and torch.isfinite(imgs).all()


# -------------------------------------------------------------------------------------------------------
# the workers hand a batch over as one tensor
def test_a_batch_of_files_crosses_from_a_worker_as_one_tensor():
    files = [torch.arange(n, dtype=torch.uint8) for n in (5, 1, 7)]
    flat, lengths, labels = G.collate_bytes([(f, i) for i, f in enumerate(files)])
    assert flat.shape == (13,) and lengths.tolist() == [5, 1, 7] and labels.tolist() == [0, 1, 2]
    back = G.split_bytes(flat, lengths)
    assert all(torch.equal(a, b) and a.is_contiguous() for a, b in zip(back, files))


FEW_DESCRIPTORS = r"""
import os, resource, sys
from lcmae_core import gpu_data as G
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = len(os.listdir("/proc/self/fd")) + 48
resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
loader = G.GpuLoader(G.JpegFolder(sys.argv[1]), 32, "cpu", G.GpuAugment(16), num_workers=2, prefetch_factor=4)
print(sum(len(labels) for _, labels in loader))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through Linux's /proc")
def test_the_loader_runs_within_a_few_file_descriptors(tmp_path):
    """Batches of 32 files from 2 workers, 4 batches each in flight, under a limit of 48 more open files than the
    process starts with: a batch handed over as a list of files holds a descriptor per file and runs out."""
    G.write_synthetic_jpegs(str(tmp_path), 128, size=(40, 30), num_classes=2)
    # (a list runs out in a worker or in the loader, and the loader then waits for the lost batch: the timeout)
    p = subprocess.run([sys.executable, "-c", FEW_DESCRIPTORS, str(tmp_path / "train")], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.split()[-1] == "128", p.stderr[-1500:]


@cuda
def test_the_photographs_are_cropped_on_the_gpu():
    cfg = configs.preset("mae", "smoke")
    cfg = configs.apply_overrides(cfg, ["data.dataset=photos"])
    train_set = common.train_dataset(cfg, "pretrain")
    batches = {}
    for dev in ("cpu", "cuda"):
        loader = common.batched_loader(cfg, train_set, torch.device(dev))(EpochSampler(len(train_set), 0), 16)
        assert {im.device.type for im in loader.images} == {dev}
        loader.set_epoch(0)
        batches[dev] = next(iter(loader))
    (cpu_imgs, cpu_labels), (gpu_imgs, gpu_labels) = batches["cpu"], batches["cuda"]
    assert gpu_imgs.device.type == "cuda" and torch.equal(gpu_labels.cpu(), cpu_labels)
    assert (gpu_imgs.cpu() - cpu_imgs).abs().max() < 1e-3  # the same crops, in fp32 on both
