"""Time the paper-scale checkpoint route end to end on this machine.

Writes random-weight files of the released ViT-B/16 checkpoints under their official names and formats (fb/mae's
``mae_visualize_vit_base.pth`` with its 8-block decoder and ``mae_pretrain_vit_base.pth``, DINO's hub file,
DeiT's ``{"model": ...}``), a folder of JPEGs of ImageNet's typical size in class folders, then runs the one
command of the README and reports its wall time. Random weights stand in for the released ones (no network here):
the shapes, the reading code and every analysis are those of the real files, so the time is the real route's.

    PYTHONPATH=. python bench/checkpoint_route.py --out SCRATCH_DIR --n-images 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

from lcmae_core.batch import CHECKPOINT_PARAMS
from lcmae_core.models import create_model

PAGES = list(CHECKPOINT_PARAMS)  # the pages that read released checkpoints


def write_checkpoints(folder: str) -> None:
    from timm.models.vision_transformer import VisionTransformer

    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    mae = create_model("mae", "base_patch16")  # ViT-B/16 with fb/mae's 512-d, 8-block decoder
    args = argparse.Namespace(model="mae_vit_base_patch16", norm_pix_loss=True, input_size=224, mask_ratio=0.75)
    torch.save({"model": mae.state_dict(), "args": args}, os.path.join(folder, "mae_visualize_vit_base.pth"))
    enc = {k: v for k, v in mae.state_dict().items() if not k.startswith(("decoder_", "mask_token"))}
    torch.save({"model": enc, "args": args}, os.path.join(folder, "mae_pretrain_vit_base.pth"))
    torch.save(VisionTransformer(num_classes=0).state_dict(), os.path.join(folder, "dino_vitbase16_pretrain.pth"))
    torch.save({"model": VisionTransformer(num_classes=1000).state_dict()},
               os.path.join(folder, "deit_base_patch16_224-b5f2ef4d.pth"))


def write_images(folder: str, n: int, classes: int = 16, size=(500, 375)) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = os.path.join(folder, f"n{i % classes:08d}")
        os.makedirs(sub, exist_ok=True)
        # smooth random images (low-frequency noise upsampled), so that JPEG sizes are typical
        small = rng.integers(0, 255, (size[1] // 25, size[0] // 25, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.BICUBIC).save(os.path.join(sub, f"img{i:05d}.JPEG"), quality=90)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="a scratch folder for the files, images and executed notebooks")
    p.add_argument("--n-images", type=int, default=256)
    args = p.parse_args(argv)
    ckpts, images = os.path.join(args.out, "checkpoints"), os.path.join(args.out, "images")
    if not os.path.exists(os.path.join(ckpts, "deit_base_patch16_224-b5f2ef4d.pth")):
        write_checkpoints(ckpts)
    if not os.path.isdir(images):
        write_images(images, max(args.n_images, 512))
    cmd = [sys.executable, "-m", "lcmae_core", "batch", "--scale", "paper", "--checkpoints", ckpts, "--data-root",
           images, "--only", *PAGES, "-p", "n_images", str(args.n_images), "--out", os.path.join(args.out, "executed"),
           "--run-root", os.path.join(args.out, "runs")]
    env = {**os.environ, "LCMAE_RESULTS_ROOT": os.path.join(args.out, "results")}
    t0 = time.time()
    res = subprocess.run(cmd, env=env)
    wall = time.time() - t0
    status = json.load(open(os.path.join(args.out, "executed", "run_status.json")))
    print(json.dumps({"wall_s": round(wall, 1), "n_images": args.n_images, "cores": os.cpu_count(),
                      "pages": {r["notebook"]: r["wall_s"] for r in status}, "exit": res.returncode}))
    return res.returncode


if __name__ == "__main__":
    sys.exit(main())
