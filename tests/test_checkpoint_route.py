"""The paper-scale pages from released checkpoints alone: one command, any folder of images, no training by
accident, records that name the files, and verdicts that a random network never passes.

The checkpoints are random-weight files in the official formats (fb/mae with its ``args`` Namespace, DINO's hub
state dict, DeiT's ``{"model": ...}``), at ViT-B/16's patch grid (224 px, patch 16) but a tiny width, so the test
runs in seconds on a CPU. Being random, every claim they reach must be "not testable", never "holds"."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lcmae_core import analysis, batch, claims, pages, parameters, verdicts
from lcmae_core.experiments import Study, TrainingRefused
from lcmae_core.models import create_model
from lcmae_core.reference_models import load_decoder_mae, load_deit, load_dino


REPO = Path(__file__).resolve().parent.parent
SHAPE = dict(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=1, decoder_embed_dim=32,
             decoder_depth=3, decoder_num_heads=1)
ROUTE_PAGES = list(batch.CHECKPOINT_PARAMS)  # the pages that read released checkpoints


def _mae(seed: int):
    torch.manual_seed(seed)
    return create_model("mae", "test", **SHAPE).eval()


def _vit_sd(seed: int, head: int = 0) -> dict:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    return VisionTransformer(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=1,
                             num_classes=head).state_dict()


def write_checkpoints(folder: Path, seed: int = 0) -> Path:
    """Random-weight files under the official names and in the official formats."""
    folder.mkdir(parents=True, exist_ok=True)
    net = _mae(seed)
    # the Namespace as fb/mae saves it; no model name, so the loader reads the (tiny) shapes from the weights
    args = argparse.Namespace(norm_pix_loss=True, input_size=224, mask_ratio=0.75, blr=1.5e-4)
    torch.save({"model": net.state_dict(), "args": args}, folder / "mae_visualize_vit_base.pth")
    enc = {k: v for k, v in net.state_dict().items() if not k.startswith(("decoder_", "mask_token"))}
    torch.save({"model": enc, "args": args}, folder / "mae_pretrain_vit_base.pth")
    torch.save(_vit_sd(seed + 1), folder / "dino_vitbase16_pretrain.pth")  # DINO's hub format: no head
    torch.save({"model": _vit_sd(seed + 2, head=10)}, folder / "deit_base_patch16_224-b5f2ef4d.pth")
    return folder


def write_images(folder: Path, n: int = 12, classes: int = 2, size=(72, 56)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / f"class{i % classes}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(sub / f"img{i}.jpg")
    return folder


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    base = tmp_path_factory.mktemp("route")
    ckpts, images, runs = write_checkpoints(base / "ckpt"), write_images(base / "images"), base / "runs"
    out = base / "executed"
    env = {**os.environ, "LCMAE_RESULTS_ROOT": str(base / "results")}
    cmd = [sys.executable, "-m", "lcmae_core", "batch", "--scale", "paper", "--only", *ROUTE_PAGES, "--checkpoints",
           str(ckpts), "--data-root", str(images), "--run-root", str(runs), "--out", str(out), "--device", "cpu",
           "-p", "n_images", "8", "-p", "n_groups", "4", "--jobs", "1"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    return {"res": res, "base": base, "ckpts": ckpts, "runs": runs, "out": out}


@pytest.mark.slow
def test_one_command_makes_the_four_pages_from_checkpoints_without_training(route):
    res = route["res"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    status = {r["notebook"]: r for r in json.loads((route["out"] / "run_status.json").read_text())}
    assert all(status[n]["ok"] for n in ROUTE_PAGES)
    assert not route["runs"].exists() or not [p for p in route["runs"].iterdir() if p.name[0] != "."]  # no run trained


@pytest.mark.slow
def test_random_weight_checkpoints_never_hold_and_the_records_name_the_files(route):
    base = route["base"] / "results" / "paper"
    # run with -p values, each page's record is kept apart from its default one, with the values beside it
    kept = {p.name.split("@")[0]: p for p in base.iterdir() if "@p-" in p.name}
    assert set(ROUTE_PAGES) - {"explorer"} <= set(kept)
    assert not [p for p in base.iterdir() if "@" not in p.name and not p.name.startswith(".")]  # no default record
    for name, folder in kept.items():
        assert json.loads((folder / "parameters.json").read_text()) == {"n_images": 8, "n_groups": 4}
        rec = json.loads((folder / "claims.json").read_text())
        assert rec["claims"] and all(c["verdict"] != verdicts.HOLDS for c in rec["claims"]), name
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
        assert metrics["images"]["n_images"] == 8 and metrics["images"]["sampling_seed"] == 0
        assert metrics["images"]["folder"] == str(route["base"] / "images")
        assert metrics["replicates"] == "4 image groups"
        files = metrics["checkpoints"]
        assert files and all(len(f["sha256"]) == 64 for f in files.values())
    fig5 = json.loads((kept["fig5_attention_distance_pretraining"] / "claims.json").read_text())["claims"][0]
    assert fig5["verdict"] == verdicts.UNFORMED and "MAE encoder attention formed" in fig5["precondition"]


def test_random_networks_never_hold_over_five_draws():
    """Five random MAEs (and random references) through the pages' measurements and claims, replicated over
    groups of images: the attention never formed, so nothing may hold."""
    imgs = torch.randn(8, 3, 224, 224)
    for seed in range(5):
        mae = _mae(seed)
        maes, inits = {0: mae}, {0: pages.random_init_like(mae, 100 + seed)}
        reps, unit = pages.replicates(maes, imgs, 4)
        maes, inits = pages.per_replicate(maes, reps), pages.per_replicate(inits, reps)
        mask = analysis.shared_mask(mae.num_patches, 0.75, seed)
        dm = pages.decoder_measures(maes, inits, reps, mask)
        formed = verdicts.attention_formed("decoder", dm["entropy"], dm["entropy_init"], dm["n_keys"], unit=unit)
        assert formed.met is False
        made = [claims.f2_first_highest(dm["s_attn_centered"], dm["s_attn_centered_init"], formed, unit, dm["s_attn"]),
                claims.f4_nearby(dm["distance"], dm["distance_init"], 100.0, formed, unit)]
        em = pages.encoder_models_measures(maes, inits, reps)
        made.append(claims.f5_mae_local(em["distance"].mean(1), {"DINO": em["distance_init"].mean(1)},
                                        em["distance_init"].mean(1), {"DINO": em["distance_init"].mean(1)},
                                        verdicts.all_of(
                                            verdicts.attention_formed("MAE encoder", em["entropy"], em["entropy_init"],
                                                                      em["n_keys"], unit=unit),
                                            verdicts.attention_local("MAE encoder", em["distance"],
                                                                     em["distance_init"], em["uniform"], unit=unit)),
                                        unit))
        assert all(c.verdict != verdicts.HOLDS for c in made), [(c.id, c.verdict) for c in made]


def test_loaders_read_the_official_formats_and_find_the_torch_cache(tmp_path, monkeypatch):
    ckpts = write_checkpoints(tmp_path / "ckpt")
    mae, text = load_decoder_mae(str(ckpts / "mae_visualize_vit_base.pth"))
    assert len(mae.decoder_blocks) == 3 and "mae_visualize_vit_base.pth" in text
    assert load_dino(str(ckpts / "dino_vitbase16_pretrain.pth")).num_classes == 0
    assert load_deit(str(ckpts / "deit_base_patch16_224-b5f2ef4d.pth")).num_classes == 10
    # a file under its official name in torch's checkpoint cache is found by name, with no network
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    os.replace(ckpts / "dino_vitbase16_pretrain.pth", tmp_path / "hub" / "checkpoints" / "dino_vitbase16_pretrain.pth")
    assert load_dino("dino_vitbase16_pretrain.pth").embed_dim == 64
    with pytest.raises(FileNotFoundError, match="-p deit FILE"):
        load_deit(str(tmp_path / "nowhere" / "deit.pth"))


def test_no_page_trains_at_gpu_or_paper_scale_unless_asked(tmp_path):
    for scale in ("gpu", "paper"):
        study = Study(scale=scale, run_root=str(tmp_path), refuse_hint="pass mae_checkpoint=FILE")
        with pytest.raises(TrainingRefused, match="pass mae_checkpoint=FILE, or pass train=True"):
            study.mae_deep_decoder()
        with pytest.raises(TrainingRefused, match="train=True"):
            pages.runs_table1(study)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


@pytest.mark.slow
def test_a_paper_page_without_checkpoints_refuses_in_seconds(tmp_path):
    out, runs = tmp_path / "executed", tmp_path / "runs"
    recs = batch.run_batch("paper", out, only=["fig4_figB1_decoder_attention_maps"], run_root=str(runs),
                           data_root=str(write_images(tmp_path / "images")), device="cpu", progress=False,
                           parameters={"n_images": 8, "n_groups": 4})  # the 12-image folder holds fewer than 512
    assert not recs[0]["ok"] and "TrainingRefused" in recs[0]["error"] and "mae_checkpoint" in recs[0]["error"]
    assert recs[0]["wall_s"] < 120 and not [p for p in runs.glob("*") if not p.name.startswith(".")]


def test_any_folder_of_images_is_sampled_at_random_stratified_opening_only_those(tmp_path, monkeypatch):
    from lcmae_core import data

    folder = write_images(tmp_path / "imgs", n=20, classes=4)
    paths, labels, classes = data.list_image_files(str(folder))
    assert len(paths) == 20 and classes == ["class0", "class1", "class2", "class3"]
    idx = data.stratified_sample(labels, 8, seed=3)
    assert sorted(np.bincount(np.asarray(labels)[idx]).tolist()) == [2, 2, 2, 2]
    assert list(idx) == list(data.stratified_sample(labels, 8, seed=3))
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in paths[:5]:
        os.link(p, flat / os.path.basename(os.path.dirname(p) + os.path.basename(p)))
    assert len(data.list_image_files(str(flat))[0]) == 5
    opened = []
    real = data._open_image
    monkeypatch.setattr(data, "_open_image", lambda p: opened.append(p) or real(p))
    study = Study(scale="paper", data_root=str(folder), image_seed=1)
    imgs, y = study.images(6, with_labels=True)
    assert imgs.shape == (6, 3, 224, 224) and len(opened) == 6
    assert study.image_record(6)["folder"] == str(folder)


def test_batch_parameters_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(batch.BatchError, match="no selected notebook takes parameter 'nope'"):
        batch.run_batch("paper", tmp_path / "o", only=["explorer"], parameters={"nope": 1})
    with pytest.raises(batch.BatchError, match="takes a int"):
        batch.run_batch("paper", tmp_path / "o", only=["explorer"], parameters={"n_images": "many"})
    with pytest.raises(batch.BatchError, match="needs one of mae_visualize_vit_base.pth"):
        batch.run_batch("paper", tmp_path / "o", only=["explorer"], checkpoints=str(tmp_path))
    with pytest.raises(batch.BatchError, match="does not exist"):
        batch.run_batch("paper", tmp_path / "o", only=["explorer"], checkpoints=str(tmp_path / "none"))
    assert parameters.parse_value("256") == 256 and parameters.parse_value("a/b.pth") == "a/b.pth"
