"""Write N synthetic JPEGs of ImageNet's typical size (500 x 375) as an image folder, for the loader benchmark.

    python bench/make_jpegs.py /tmp/jpegs --num 256                # /tmp/jpegs/train/class_000/img_000000.jpg ...
    python -m lcmae_core bench --workloads loader,loader_pil --data-root /tmp/jpegs

Random smooth images with some texture (noise at five scales, upsampled bicubically; about 80 KB each at quality
90), see ``lcmae_core.gpu_data.write_synthetic_jpegs``. Write them outside the repository.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from lcmae_core.gpu_data import write_synthetic_jpegs  # noqa: E402


def _write(a) -> dict:
    return write_synthetic_jpegs(*a)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="output folder (images go to ROOT/train/<class>/)")
    ap.add_argument("--num", type=int, default=256, help="number of images (default 256)")
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--grey-every", type=int, default=0, help="every k-th image greyscale (default 0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="processes writing in parallel (default 1)")
    args = ap.parse_args(argv)
    t0 = time.time()
    jobs = max(1, min(args.jobs, args.num))
    bounds = [args.num * k // jobs for k in range(jobs + 1)]
    common = ((args.width, args.height), args.classes, args.seed, args.quality, args.grey_every)
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        parts = list(pool.map(_write, [(args.root, b - a, *common, a) for a, b in zip(bounds, bounds[1:])]))
    n = sum(p["num_images"] for p in parts)
    mean = sum(p["mean_bytes"] * p["num_images"] for p in parts) / max(n, 1)
    print(f"wrote {n} JPEGs of {args.width}x{args.height} (mean {mean / 1e3:.1f} KB) "
          f"under {os.path.join(args.root, 'train')} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
