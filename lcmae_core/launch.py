"""Entry point of a launched training process: ``python -m lcmae_core.launch CONFIG.json --run-root DIR``.

``runs.run_or_load(..., launcher="torchrun")`` starts it under ``torch.distributed.run``; every rank trains
the run the config file describes (``runs.train_run``).
"""

from __future__ import annotations

import argparse
import json
import sys

from .runs import train_from_dict
from .train.distributed import shutdown


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lcmae_core.launch", description=__doc__)
    p.add_argument("config", help="a JSON file holding configs.to_dict(config)")
    p.add_argument("--run-root", default=None, help="the run store's root")
    args = p.parse_args(argv)
    with open(args.config) as f:
        cfg = json.load(f)
    try:
        train_from_dict(cfg, args.run_root)
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
