"""Datasets and transforms: shapes, splits, labels, errors."""

import numpy as np
import pytest
import torch

from lcmae_core import data, photos


def test_mnist5k_split_is_fixed_stratified_and_disjoint():
    tr, va = data.mnist5k_split("train"), data.mnist5k_split("val")
    assert len(tr) == 4000 and len(va) == 1000
    assert not set(tr) & set(va)
    _, y = data.mnist5k_arrays()
    assert np.bincount(y[va], minlength=10).tolist() == [100] * 10
    assert np.array_equal(va, data.mnist5k_split("val"))  # deterministic


@pytest.mark.parametrize("recipe", ["pretrain", "finetune", "eval"])
def test_mnist_transforms_give_normalised_3_channel_tensors(recipe):
    info = data.dataset_info("mnist5k")
    ds = data.build_dataset("mnist5k", "train", data.build_transform(recipe, info, 28))
    x, y = ds[0]
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x[0], x[1]) or recipe == "finetune"  # grey replicated (before pixel-mode erasing)
    assert 0 <= y < 10


def test_eval_transform_is_deterministic_and_keeps_mnist_at_native_size():
    info = data.dataset_info("mnist5k")
    ds = data.build_dataset("mnist5k", "val", data.build_transform("eval", info, 28))
    a, b = ds[3][0], ds[3][0]
    assert torch.equal(a, b)
    X, _ = data.mnist5k_arrays()
    raw = torch.tensor(X[data.mnist5k_split("val")[3]], dtype=torch.float32) / 255
    assert torch.allclose(a[0] * 0.3081 + 0.1307, raw, atol=1e-5)


def test_photos_and_single_image_are_unlabelled_crops():
    info = data.dataset_info("photos")
    tf = data.build_transform("pretrain", info, 32)
    ds = data.build_dataset("photos", "train", tf, samples_per_epoch=10, photo_short_side=64)
    assert len(ds) == 10 and ds[0][0].shape == (3, 32, 32) and ds[0][1] == -1
    assert len(ds.photos) == len(photos.PRETRAIN_PHOTOS)
    one = data.build_dataset("single_image", "train", tf, image="coffee", samples_per_epoch=5, photo_short_side=64)
    assert len(one.photos) == 1
    with pytest.raises(data.DataError, match="no val split"):
        data.build_dataset("single_image", "val")


def test_the_analysis_photos_are_held_out_from_pretraining():
    assert not set(photos.ANALYSIS_PHOTOS) & set(photos.PRETRAIN_PHOTOS)
    pretrain = {photos.load_photo(n, 64).tobytes() for n in photos.PRETRAIN_PHOTOS}
    val = data.build_dataset("photos", "val", photo_short_side=64)
    assert len(val) == photos.ANALYSIS_CROPS and {p.tobytes() for p in val.photos}.isdisjoint(pretrain)
    # the val split is fixed: the same index is the same crop, whoever builds it; its labels name the photo
    again = data.build_dataset("photos", "val", photo_short_side=64)
    assert [val.box(i) for i in range(20)] == [again.box(i) for i in range(20)]
    assert np.asarray(val[5][0]).tobytes() == np.asarray(again[5][0]).tobytes()
    assert set(data.labels_of(val)) == set(range(len(photos.ANALYSIS_PHOTOS)))
    # square crops inside the photo, of an area within the declared range (capped by the short side)
    for i in range(50):
        x0, y0, x1, y1 = val.box(i)
        img = val.photos[i % len(val.photos)]
        assert x1 - x0 == y1 - y0 and 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height
        frac = (x1 - x0) ** 2 / (img.width * img.height)
        assert frac <= photos.FIXED_CROP_SCALE[1] + 1e-9
        assert frac >= photos.FIXED_CROP_SCALE[0] - 0.01 or x1 - x0 == min(img.width, img.height)


def test_photo_ids_trains_and_validates_on_disjoint_parts_of_each_photo():
    info = data.dataset_info("photo_ids")
    assert info.num_classes == len(photos.PRETRAIN_PHOTOS)
    tf = data.build_transform("eval", info, 32)
    train = data.build_dataset("photo_ids", "train", tf, photo_short_side=64, fixed=True)
    val = data.build_dataset("photo_ids", "val", tf, photo_short_side=64)
    for k, name in enumerate(photos.PRETRAIN_PHOTOS):
        whole = photos.load_photo(name, 64)
        cut = round(whole.width * photos.PHOTO_IDS_TRAIN_FRACTION)
        assert train.photos[k].size == (cut, whole.height) and val.photos[k].size == (whole.width - cut, whole.height)
        assert np.array_equal(np.asarray(whole)[:, cut:], np.asarray(val.photos[k]))
    assert set(data.labels_of(val)) == set(range(info.num_classes))
    x, y = val[13]
    assert x.shape == (3, 32, 32) and y == 13 % info.num_classes
    rand = data.build_dataset("photo_ids", "train", data.build_transform("pretrain", info, 32), photo_short_side=64,
                              samples_per_epoch=24)
    assert isinstance(rand, photos.PhotoCrops) and [rand[i][1] for i in range(24)] == [i % 12 for i in range(24)]


def test_photo_ids_probe_splits_cut_the_training_part_again_and_other_sets_refuse_them():
    """The converged probe chooses its strength on photo_ids' training part cut as the photo is: it fits on the left
    two thirds of the training part and scores on the rest, so no held-out pixel is in a fitted crop."""
    info = data.dataset_info("photo_ids")
    assert info.probe_heldout == "region" and data.dataset_info("mnist5k").probe_heldout == "random"
    tf = data.build_transform("eval", info, 32)
    fit, sel = (data.build_dataset("photo_ids", s, tf, photo_short_side=64) for s in data.PROBE_SPLITS)
    for k, name in enumerate(photos.PRETRAIN_PHOTOS):
        train_part = photos.photo_part(photos.load_photo(name, 64), "train")
        cut = round(train_part.width * photos.PHOTO_IDS_TRAIN_FRACTION)
        assert fit.photos[k].size == (cut, train_part.height)
        assert sel.photos[k].size == (train_part.width - cut, train_part.height)
        assert np.array_equal(np.asarray(train_part)[:, cut:], np.asarray(sel.photos[k]))
        assert np.array_equal(np.asarray(train_part)[:, :cut], np.asarray(fit.photos[k]))
    # fixed crops, each split its own, every class present
    assert isinstance(fit, photos.FixedCrops) and fit.seed != sel.seed
    assert set(data.labels_of(sel)) == set(range(info.num_classes))
    with pytest.raises(data.DataError, match="photo_ids"):
        data.build_dataset("mnist5k", "probe_fit", tf)
    with pytest.raises(ValueError, match="unknown photo part"):
        photos.photo_part(photos.load_photo("camera", 64), "left")


def test_digits_are_not_flipped_photos_are():
    from lcmae_core import configs

    assert data.hflip_of(configs.preset("mae", "cpu").data) == 0.0  # MNIST-5k
    assert data.hflip_of(configs.preset("finetune", "cpu").data) == 0.0
    on_photos = configs.apply_overrides(configs.preset("mae", "cpu"), ["data.dataset=photos"])
    assert data.hflip_of(on_photos.data) == 0.5
    forced = configs.apply_overrides(configs.preset("mae", "cpu"), ["data.hflip=0.5"])
    assert data.hflip_of(forced.data) == 0.5
    # None hashes as what it resolves to: an explicit 0 on digits is the same run
    explicit = configs.apply_overrides(configs.preset("mae", "cpu"), ["data.hflip=0"])
    assert configs.run_name(explicit) == configs.run_name(configs.preset("mae", "cpu"))
    assert configs.run_name(forced) != configs.run_name(configs.preset("mae", "cpu"))


def test_every_listed_photo_loads_offline():
    for name in photos.BUNDLED_PHOTOS:
        assert photos.load_photo(name, 48).mode == "RGB"


def test_limit_keeps_a_seeded_subset():
    ds = data.build_dataset("mnist5k", "train", limit=100)
    assert len(ds) == 100 and data.labels_of(ds).shape == (100,)


def test_errors_are_data_errors(tmp_path):
    with pytest.raises(data.DataError, match="unknown dataset"):
        data.dataset_info("mnist60k")
    # the library names the config key, and the flag and the notebook parameter that set it
    with pytest.raises(data.DataError, match="data.root: --data-root DIR on the command line, data_root in a notebook"):
        data.build_dataset("imagefolder", "train")
    with pytest.raises(data.DataError, match="does not exist"):
        data.build_dataset("imagefolder", "train", root=str(tmp_path / "nope"))
    (tmp_path / "train").mkdir()
    with pytest.raises(data.DataError, match="empty"):
        data.build_dataset("imagefolder", "train", root=str(tmp_path))
    with pytest.raises(data.DataError, match="data.download=true"):
        data.build_dataset("cifar10", "train", root=str(tmp_path))


def test_imagefolder_reads_and_flags_corrupt_images(tmp_path):
    from PIL import Image
    for split in ("train", "val"):
        for c in ("a", "b"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            Image.new("RGB", (20, 20), (10, 200, 30)).save(d / "0.png")
    ds = data.build_dataset("imagefolder", "train", data.build_transform("eval", data.dataset_info("imagefolder"), 16),
                            root=str(tmp_path))
    assert len(ds) == 2 and ds[1][0].shape == (3, 16, 16) and data.num_classes("imagefolder", str(tmp_path)) == 2
    (tmp_path / "train" / "a" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(data.DataError, match="corrupt"):
        data.build_dataset("imagefolder", "train", root=str(tmp_path))


def test_mnist_eval_tensors_equal_the_pil_eval_transform():
    """The bundled digits' eval split, computed at once, is the eval transform's output exactly."""
    import torch

    from lcmae_core import data

    info = data.dataset_info("mnist5k")
    for split, limit in (("val", None), ("train", 300)):
        fast = data.eval_tensors("mnist5k", split, 28, limit)
        slow = data.build_dataset("mnist5k", split, data.build_transform("eval", info, 28), limit=limit)
        assert len(fast) == len(slow)
        for i in (0, len(slow) // 2, len(slow) - 1):
            (a, ya), (b, yb) = fast[i], slow[i]
            assert ya == yb and torch.allclose(a, b, atol=1e-6)
    assert data.eval_tensors("mnist5k", "val", 32) is None and data.eval_tensors("photos", "val", 28) is None
