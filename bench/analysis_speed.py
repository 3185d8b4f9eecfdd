"""Time the streaming analyses (attention distance, Eq. 7 S^attn, Eq. 8 S^sim) over N images; print JSON.

    python bench/analysis_speed.py                       # cpu-scale MAE (dim 128, depth 6, patch 4, 32 px)
    python bench/analysis_speed.py --preset vitb --device cuda   # the GPU target: ViT-B/16, 1000 images < 1 min

Random weights and random images: the cost of the analysis does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lcmae_core.analysis import attention_distance_curves, attention_similarity_curve, semantic_similarity_curve
from lcmae_core.models import create_model

PRESETS = {
    "cpu": dict(size="test", img_size=32, patch_size=4, embed_dim=128, depth=6, num_heads=4,
                decoder_embed_dim=128, decoder_depth=4, decoder_num_heads=4, mlp_ratio=4.0),
    "vitb": dict(size="base_patch16"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-eq8", action="store_true", help="skip S^sim (Eq. 8)")
    args = ap.parse_args()

    kw = dict(PRESETS[args.preset])
    size = kw.pop("size")
    torch.manual_seed(0)
    model = create_model("mae", size, **kw).eval().to(args.device)
    img = model.patch_embed.img_size[0]
    images = torch.rand(args.images, 3, img, img)  # on the host, moved per batch like a loader's output
    bs = args.batch_size

    def timed(fn):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t, out

    res = {"preset": args.preset, "device": args.device, "images": args.images, "batch_size": bs,
           "threads": torch.get_num_threads(), "num_patches": model.num_patches,
           "encoder_depth": len(model.blocks), "decoder_depth": len(model.decoder_blocks)}
    attention_distance_curves(model, images[:bs], "encoder", batch_size=bs)  # warm-up
    with torch.no_grad():  # the baseline: the encoder alone over the same images, no analysis
        res["plain_encoder_forward_s"], _ = timed(lambda: [model.forward_encoder(b.to(args.device), 0.0)
                                                           for b in images.split(bs)])
    res["encoder_attention_distance_s"], _ = timed(lambda: attention_distance_curves(model, images, "encoder",
                                                                                    batch_size=bs))
    res["decoder_attention_distance_s"], _ = timed(lambda: attention_distance_curves(
        model, images, "decoder", queries="masked", batch_size=bs))
    res["eq7_attention_similarity_s"], s = timed(lambda: attention_similarity_curve(model, images, batch_size=bs))
    if not args.skip_eq8:
        res["eq8_semantic_similarity_s"], _ = timed(lambda: semantic_similarity_curve(model, model, images,
                                                                                     batch_size=bs))
    res["eq7_values"] = [round(float(v), 4) for v in s]
    if args.device.startswith("cuda"):
        res["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}))


if __name__ == "__main__":
    main()
