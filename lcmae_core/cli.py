"""The command line: ``python -m lcmae_core {pretrain,finetune,linprobe,...} [options]``.

Subcommands are registrations (``register_command``): this module registers the three training commands;
other modules add theirs (``batch``, ``plan``, ``perf.bench``) by defining ``add_cli_commands(register)``, which
``main`` calls for each module named in ``COMMAND_MODULES`` that exists.

Every training command resolves a config (``configs.preset(family, scale)`` + ``--dataset``/``--data-root`` +
``--set key=value``), hands it to ``runs.run_or_load`` and prints the run's folder and metrics as JSON on
stdout. A second identical call finds the finished run and trains nothing. Bad input gives one line on
stderr, no traceback, exit status 2, and no run folder.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from typing import Callable

from .errors import OneLineParser as _Parser
from .errors import UsageError, interruptible, quiet_interrupts, summary

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}
COMMAND_MODULES = ("lcmae_core.batch", "lcmae_core.plan", "lcmae_core.records", "lcmae_core.perf.bench")
EXIT_BAD_INPUT = 2


def register_command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
                     run: Callable[[argparse.Namespace], int | None]) -> None:
    """Add a subcommand: ``configure(parser)`` adds its options, ``run(args)`` does the work (returns an exit
    status or None for 0)."""
    COMMANDS[name] = (help, configure, run)


# -------------------------------------------------------------------------------------------------------
# training commands
def _add_training_options(p: argparse.ArgumentParser, kind: str) -> None:
    # lazy: torch/timm; importing cli (--help, argument parsing) must stay instant
    from .configs import PRETRAIN_FAMILIES
    from .scales import NAMES as SCALES
    from .scales import SCALES as RECORDS
    from .runs import LAUNCHERS
    from .data import DATASETS

    if kind == "pretrain":
        p.add_argument("--family", default="mae", choices=PRETRAIN_FAMILIES,
                       help="what to pretrain: mae (the official MAE), lcmae (LC-MAE, Sec. 3.3), ae (the block "
                            "autoencoder without masking, Sec. 4.2), simclr (the global contrastive model of "
                            "Fig. 5: SimCLR's InfoNCE on the CLS token of two views). Default: mae")
    else:
        p.add_argument("--family", default="mae", choices=PRETRAIN_FAMILIES + ("none",),
                       help="the pretraining family whose encoder to start from; its run is found or trained "
                            "first at the same scale. 'none': random initialisation. Default: mae")
        p.add_argument("--pretrain", metavar="RUN", default=None,
                       help="start from this finished pretraining run (family-hash) instead of --family")
        p.add_argument("--pretrain-set", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                       help="overrides for the pretraining run made from --family (same syntax as --set)")
    p.add_argument("--scale", default="cpu", choices=SCALES,
                   help="preset size, with what it needs: "
                        + " | ".join(f"{n}: {RECORDS[n].hardware}" for n in SCALES) + ". Default: cpu")
    p.add_argument("--run-root", metavar="DIR", default=None,
                   help="where runs live (<root>/<family>-<hash>/); default: $LCMAE_RUN_ROOT, else runs/ of the source "
                        "checkout, else ./runs")
    p.add_argument("--dataset", metavar="NAME", default=None,
                   help=f"dataset by name, one of {', '.join(DATASETS)}; default: the scale's")
    p.add_argument("--data-root", metavar="DIR", default=None,
                   help="folder of the data for cifar10/cifar100/imagefolder/imagenet (root/train, root/val)")
    p.add_argument("--set", metavar="KEY=VALUE", dest="overrides", nargs="+", action="extend", default=[],
                   help="override config fields, nested keys with dots, e.g. --set optim.epochs=3 "
                        "mask_ratio=0.6 model.decoder=conv data.download=true device=cpu; values are type-checked "
                        "(see --show-config for every key)")
    p.add_argument("--launcher", default="local", choices=LAUNCHERS,
                   help="local: this process (also under an outer torchrun); torchrun: --nproc-per-node processes "
                        "here; slurm: a SLURM job through submitit. Default: local")
    p.add_argument("--nproc-per-node", type=int, default=1, help="torchrun: processes on this machine (default 1)")
    p.add_argument("--nodes", type=int, default=1, help="slurm: nodes (default 1)")
    p.add_argument("--gpus-per-node", type=int, default=1, help="slurm: GPUs (and tasks) per node (default 1)")
    p.add_argument("--partition", default=None, help="slurm: partition")
    p.add_argument("--time", type=int, default=24 * 60, help="slurm: time limit in minutes (default 1440)")
    p.add_argument("--show-config", action="store_true", help="print the resolved config as JSON and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(kind: str, family: str, scale: str, dataset: str | None = None, data_root: str | None = None,
                 overrides=(), no_progress: bool = False):
    """The config a command line describes: preset + dataset/root + overrides (type-checked)."""
    from . import configs  # lazy: torch/timm; importing cli must stay instant

    base = {}
    if dataset is not None:
        base["data.dataset"] = dataset
    if data_root is not None:
        base["data.root"] = data_root
    if no_progress:
        base["progress"] = "false"
    return configs.build(kind if kind != "pretrain" else family, scale, base, list(overrides))


def _launch_kwargs(args) -> dict:
    return dict(launcher=args.launcher, root=args.run_root, nproc_per_node=args.nproc_per_node,
                slurm={"nodes": args.nodes, "gpus_per_node": args.gpus_per_node, "partition": args.partition,
                       "time_min": args.time})


def _report(run) -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return
    print(f"run: {run.dir}")
    print(json.dumps(run.metrics, indent=2, sort_keys=True))


def _run_training(kind: str):
    def run(args) -> int:
        from . import configs, runs  # lazy: torch/timm; importing cli must stay instant

        if kind == "pretrain":
            cfg = build_config("pretrain", args.family, args.scale, args.dataset, args.data_root, args.overrides,
                               args.no_progress)
        else:
            cfg = build_config(kind, args.family, args.scale, args.dataset, args.data_root, args.overrides,
                               args.no_progress)
            explicit = {o.split("=", 1)[0].strip() for o in args.overrides}
            if args.pretrain:
                pre = runs.find_run(args.pretrain, args.run_root)
                pre_model = configs.from_dict(pre.config).model
                pre_name = pre.name
            elif args.family != "none":
                pre_cfg = build_config("pretrain", args.family, args.scale, args.dataset, args.data_root,
                                       [*_shared_overrides(args.overrides), *args.pretrain_set], args.no_progress)
                configs.validate(pre_cfg)
                pre_model, pre_name = pre_cfg.model, configs.run_name(pre_cfg)
                if not args.show_config:
                    pre_run = runs.run_or_load(pre_cfg, **_launch_kwargs(args))
                    pre_name = pre_run.name
            else:
                pre_model, pre_name = None, None
            if pre_model is not None:  # the classifier takes the pretrained encoder's shape
                cfg = configs.apply_overrides(cfg, {k: v for k, v in configs.encoder_overrides(pre_model).items()
                                                    if k not in explicit})
            cfg.pretrain = pre_name
        if args.show_config:
            print(json.dumps(configs.to_dict(cfg), indent=2))
            return 0
        run = runs.run_or_load(cfg, **_launch_kwargs(args))
        _report(run)
        return 0
    return run


def _shared_overrides(overrides) -> list[str]:
    """--set items that also apply to the pretraining stage: the runtime ones (device, data location)."""
    keep = ("device", "data.root", "data.download", "data.num_workers", "progress", "log_every")
    return [o for o in overrides if o.split("=", 1)[0].strip() in keep]


register_command("pretrain", "pretrain MAE, LC-MAE or the block autoencoder",
                 lambda p: _add_training_options(p, "pretrain"), _run_training("pretrain"))
register_command("finetune", "finetune a pretrained encoder (or a random one) end to end",
                 lambda p: _add_training_options(p, "finetune"), _run_training("finetune"))
register_command("linprobe", "train a linear probe (BatchNorm + linear, LARS) on a frozen encoder",
                 lambda p: _add_training_options(p, "linprobe"), _run_training("linprobe"))


# -------------------------------------------------------------------------------------------------------
def _load_command_modules() -> None:
    for name in COMMAND_MODULES:
        if name.split(".")[-1] in COMMANDS or importlib.util.find_spec(name) is None:
            continue
        mod = importlib.import_module(name)
        hook = getattr(mod, "add_cli_commands", None)
        if hook is not None:
            hook(register_command)


def make_parser() -> argparse.ArgumentParser:
    _load_command_modules()
    parser = _Parser(prog="python -m lcmae_core",
                     description="Train and evaluate the models of the LC-MAE reproduction. Runs are cached by "
                                 "config hash: an identical second call reuses the finished run.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_, description=help_))
    return parser


@interruptible
def main(argv=None) -> int:
    """Run a command; bad input: one line on stderr and exit status 2; Ctrl-C at any moment (the imports
    included): one line and status 130."""
    return _main(argv)


def _main(argv=None) -> int:
    with quiet_interrupts():  # a Ctrl-C while the command modules import: one line and 130 at once
        # lazy: torch/timm; importing cli must stay instant
        from .configs import ConfigError
        from .data import DataError
        from .runs import RunError
        from .train.engine import NonFiniteLoss
        from .pretrained import CheckpointError
        from .models.classifier import PretrainMismatch

        parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_BAD_INPUT
        status = COMMANDS[args.command][2](args)
        return int(status or 0)
    except (UsageError, ConfigError, DataError, RunError, PretrainMismatch) as e:
        print(f"error: {summary(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (NonFiniteLoss, CheckpointError) as e:
        print(f"error: {summary(e)}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {summary(e)}", file=sys.stderr)
        return 1
