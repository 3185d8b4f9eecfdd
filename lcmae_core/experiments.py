"""The runs behind the book's tables and figures, named once so that notebooks share them.

A ``Study`` binds a scale, a run store and a device; its methods return finished runs from the run store
(``lcmae_core.runs.run_or_load``), training only what is missing. The same call in two notebooks gives the
same config, hence the same run: the MAE baseline at mask ratio 0.75 serves Table 1 (b), Table 2, Table 3,
Table A.1 and Figs. 5 and 6.

Readings of the paper that fix the runs:

- **Table 1** uses a 2-block decoder ("we set the depth of the decoder to 2"); its row (b) is plain MAE with that
  decoder. The paper reports 82.9 for (b), for the Transformer row of Table 2, for MAE in Table 3 and for
  ImageNet in Table A.1, so we read these as one run: the MAE baseline has a 2-block decoder at every scale.
- **Figs. 2-4** need a deep decoder (Fig. 4 shows layers 1, 2, 3, 5 and 8): at paper scale the official
  8-block MAE; at smaller scales a baseline MAE with the scale's ``attention_decoder_depth`` blocks (4).
- **Table 3's block sizes** are the odd multiples 1, 3, 5, 7 of the patch size (16, 48, 80, 112 at patch 16).
- **The supervised model** of Fig. 5 below the paper scale is the ViT finetuned from random initialisation on the
  attention pages' labelled set (at the small scales ``photo_ids``: which pretraining photo a crop is from); it is
  also the reference model for Eq. 8 there.
- **The attention pages** (Figs. 2-7, B.1, A.1, the explorer) run on ``Study.for_attention()``: at the smoke and
  cpu scales, natural-image crops (``scales.Scale.attention``), where the labelled digits are too small and flat
  a grid for attention to form; their MAE is the deep-decoder one, shared by all of them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch

from . import configs, data, scales
from .reference_models import load_run, load_run_init
from .runs import Run, RunError, is_finished, run_or_load, run_path
from .masking import MASK_RATIO
from .train.common import eval_dataset

# Table 3's block sizes, in patches: 1, 3, 5, 7 (the paper's 16, 48, 80, 112 px of 224: 7, 21, 36, 50% of the width),
# keeping those narrower than the image (``Study.ae_block_multiples``), and at least three (Table 3's steady rise).
# On the cpu scale's 7x7 digits a 7-patch block is the whole image, so Table 3 stops at 5 there (71% of the width);
# the attention pages' 12x12 grid keeps all four (8, 25, 42, 58%)
AE_BLOCK_MULTIPLES = (1, 3, 5, 7)
# set for the notebooks a batch executes (``lcmae_core.batch``): Study then trains without progress bars
BATCH_ENV = "LCMAE_BATCH"
# set when the batch has planned and trained every run of its notebooks first: a notebook that still finds a run
# missing then fails at once, naming it (the plan and the notebook disagree), instead of training it alone
PLANNED_ENV = "LCMAE_PLANNED"
# Fig. 5's encoders below the paper scale (``Study.contrastive``, ``Study.supervised``), as the pages and the
# preconditions name them
FIG5_NAMES = {"mae": "MAE", "contrastive": "SimCLR (InfoNCE)", "supervised": "supervised ViT"}


class TrainingRefused(RunError):
    """A gpu- or paper-scale run that is missing and was not asked to be trained. One line, naming what to pass."""


@dataclass
class Study:
    """Where and how a notebook's runs live. ``overrides`` apply to every run (dotted keys, as ``--set``).

    seeds: the seeds of the runs that decide a claim (default: the scale's, ``scales.Scale.seeds``); the arms of a
    comparison share each seed. planner: a list to record run configs in instead of training them (``lcmae_core.plan``): every
    method then returns unfinished ``Run`` records with the names the real runs will have.
    """

    scale: str = "cpu"
    run_root: str | None = None
    data_root: str | None = None
    device: str = "auto"
    launcher: str = "local"
    dataset: str | None = None  # None: the scale's labelled default (mnist5k, cifar10, imagenet)
    overrides: dict = field(default_factory=dict)
    verbose: bool = True
    seeds: tuple[int, ...] | None = None
    planner: list | None = field(default=None, repr=False)
    image_seed: int = 0  # the seed of the analysis images' random sample (``images``)
    train: bool = False  # gpu and paper scales: train a missing run (hours to days) instead of refusing
    refuse_hint: str = ""  # what the page can be given instead of training (e.g. "pass mae_checkpoint=FILE")
    family_overrides: dict = field(default_factory=dict)  # {family: {key: value}}, after ``overrides``

    @property
    def progress_bars(self) -> bool:
        """Show a progress bar while a run trains: in JupyterLab and at a terminal (a first run can take minutes),
        but not in the notebooks a batch executes (``BATCH_ENV``), whose outputs must not depend on whether a run
        was already in the store, nor while planning."""
        return self.verbose and self.planner is None and not os.environ.get(BATCH_ENV)

    @property
    def record(self) -> scales.Scale:
        """The record of this study's scale (``lcmae_core.scales``): everything that differs between scales."""
        return configs.scale_record(self.scale)

    def __post_init__(self):
        seeds = tuple(self.record.seeds if self.seeds is None else self.seeds)
        if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds!r}")
        self.seeds = seeds

    # --------------------------------------------------------------------------------------------------
    def config(self, family: str, changes: dict | None = None) -> configs.RunConfig:
        """The preset of a family at this study's scale, with the study's and the caller's changes."""
        base = {"device": self.device, "progress": self.progress_bars}
        if self.data_root:
            base["data.root"] = self.data_root
        if self.dataset:
            base["data.dataset"] = self.dataset
        cfg = configs.build(family, self.scale, base, self.overrides, self.family_overrides.get(family, {}), changes)
        return configs.labelled_for_classifiers(cfg)

    def run(self, cfg: configs.RunConfig) -> Run:
        if self.planner is not None:  # planning: record the config, train nothing
            configs.validate(cfg)
            self.planner.append(cfg)
            return Run(configs.run_name(cfg), run_path(cfg, self.run_root), configs.to_dict(cfg))
        if self.record.ask_before_training and not self.train and not is_finished(cfg, self.run_root):
            hint = f"{self.refuse_hint}, or " if self.refuse_hint else ""
            raise TrainingRefused(
                f"{configs.run_name(cfg)} ({describe(cfg)}) is not in the run store, and training it at the "
                f"{self.scale} scale needs {self.record.hardware}: {hint}pass train=True "
                "(batch: --train) to train it")
        if os.environ.get(PLANNED_ENV) and not is_finished(cfg, self.run_root):
            raise RunError(f"{configs.run_name(cfg)} ({describe(cfg)}) is not in the run store although the batch "
                           "planned and trained this notebook's runs first: the plan and the page disagree "
                           "(pages.page_runs); run the notebook on its own to train it")
        run = run_or_load(cfg, launcher=self.launcher, root=self.run_root)
        if self.verbose:
            print(f"{run.name}: {describe(cfg)}")
        return run

    def for_attention(self) -> "Study":
        """This study as the attention pages run it (Figs. 2-7, B.1, A.1, the explorer): at the smoke and cpu
        scales, MAE-family pretraining on crops of the bundled photos (``scales.Scale.attention``; the analysis
        images are crops of held-out photos), where the labelled set is digits on a grid too small and flat for
        attention to form; elsewhere, or with a dataset chosen by the caller, the study itself."""
        recipe = self.record.attention
        if not recipe or self.dataset:
            return self
        # the study's own changes (a calibration candidate's) stand above the attention recipe's, per family too
        families = {*self.record.attention_family, *self.family_overrides}
        return dataclasses.replace(self, dataset=recipe["data.dataset"], overrides={**recipe, **self.overrides},
                                   family_overrides={f: {**self.record.attention_family.get(f, {}),
                                                         **self.family_overrides.get(f, {})} for f in families})

    # --------------------------------------------------------------------------------------------------
    # pretraining runs
    def pretrain(self, family: str = "mae", changes: dict | None = None) -> Run:
        return self.run(self.config(family, changes))

    def mae(self, mask_ratio: float = MASK_RATIO, decoder: str = "transformer", decoder_depth: int | None = None,
            seed: int = 0) -> Run:
        """The MAE baseline (2-block decoder), or a variant: another mask ratio, decoder, depth or seed."""
        depth = decoder_depth or configs.TABLE1_DECODER_DEPTH
        return self.pretrain("mae", {"mask_ratio": mask_ratio, "model.decoder": decoder, "model.decoder_depth": depth,
                                     "seed": seed})

    def mae_deep_decoder(self, seed: int = 0) -> Run:
        """An MAE whose decoder is deep enough to show layer-by-layer behaviour (Figs. 2-4)."""
        return self.attention_mae(seed=seed)

    def attention_mae(self, mask_ratio: float = MASK_RATIO, seed: int = 0) -> Run:
        """The MAE of the attention pages: the deep-decoder MAE (Figs. 2-4) at a mask ratio, so that one run per
        seed serves Figs. 2-7 and A.1 (the paper's Figs. 5 and 6 read the official MAE, which has the 8-block
        decoder)."""
        depth = self.record.attention_decoder_depth
        return self.mae(mask_ratio=mask_ratio, decoder_depth=depth, seed=seed)

    def lcmae(self, setting: str, seed: int = 0) -> Run:
        """LC-MAE with one of Table 1's loss settings, a to g (2-block decoder)."""
        return self.pretrain("lcmae", {"model.setting": setting, "model.decoder_depth": configs.TABLE1_DECODER_DEPTH,
                                       "seed": seed})

    def contrastive(self, seed: int = 0) -> Run:
        """The global contrastive model of Fig. 5: SimCLR's NT-Xent on the CLS token of two augmented views, on the
        MAE encoder (``models.contrastive.ContrastiveViT``)."""
        return self.pretrain("simclr", {"seed": seed})

    def ae(self, multiple: int, seed: int = 0) -> Run:
        """AE(b) of Table 3 with b = multiple x patch size (multiple odd)."""
        p = self.config("ae").model.patch_size
        return self.pretrain("ae", {"model.block_size": multiple * p,
                                    "model.decoder_depth": configs.TABLE1_DECODER_DEPTH, "seed": seed})

    @property
    def fig6_mask_ratios(self) -> tuple[float, ...]:
        """Fig. 6's pretraining mask ratios at this study's scale."""
        return self.record.fig6_mask_ratios

    @property
    def ae_block_multiples(self) -> tuple[int, ...]:
        """Table 3's block sizes for this study's images, in patches (``AE_BLOCK_MULTIPLES``)."""
        m = self.config("ae").model
        narrower = tuple(k for k in AE_BLOCK_MULTIPLES if k * m.patch_size < m.img_size)
        return narrower if len(narrower) >= 3 else AE_BLOCK_MULTIPLES[:3]

    def single_image(self, image: str = "astronaut", epochs: int | None = None, seed: int = 0) -> Run:
        """MAE pretrained on one bundled photo with heavy random-resized-crop augmentation (Table A.1)."""
        changes = {"data.dataset": "single_image", "data.image": image, "data.eval_dataset": self.classifier_dataset(),
                   "model.decoder_depth": configs.TABLE1_DECODER_DEPTH, "seed": seed}
        if epochs:  # a short schedule keeps its warmup inside it (the paper: 5 epochs on one image)
            warmup = self.config("mae").optim.warmup_epochs
            changes.update({"optim.epochs": epochs, "optim.warmup_epochs": min(warmup, epochs / 4)})
        return self.pretrain("mae", changes)

    def labelled(self) -> str:
        """The study's dataset (its analysis images come from it): the caller's, else the scale's."""
        return self.dataset or configs.data_preset(self.scale).dataset

    def classifier_dataset(self) -> str:
        """The labelled set the study's classifiers train and are read on: its dataset, or an unlabelled one's
        labelled twin (``data.LABELLED_TWIN``: the bundled photos -> which photo a crop is from)."""
        return data.LABELLED_TWIN.get(self.labelled(), self.labelled())

    # --------------------------------------------------------------------------------------------------
    # evaluation runs
    def finetune(self, pretrain: Run | None, changes: dict | None = None) -> Run:
        """Finetune a pretraining run's encoder (None: from random initialisation) on the labelled set."""
        return self.run(self.config("finetune", {"pretrain": pretrain.name if pretrain else None,
                                                 **self._encoder_of(pretrain), **(changes or {})}))

    def linprobe(self, pretrain: Run | None, changes: dict | None = None) -> Run:
        """Linear probe (BatchNorm + linear head) on a frozen encoder (None: a random one)."""
        return self.run(self.config("linprobe", {"pretrain": pretrain.name if pretrain else None,
                                                 **self._encoder_of(pretrain), **(changes or {})}))

    def supervised(self, seed: int = 0) -> Run:
        """The supervised ViT: finetuned from random initialisation (Table 3's first row; Fig. 5's stand-in for
        DeiT and Eq. 8's reference below the paper scale)."""
        return self.finetune(None, {"seed": seed})

    # --------------------------------------------------------------------------------------------------
    # seeds
    def per_seed(self, make) -> dict[int, Run | None]:
        """{seed: make(seed)} over the study's seeds: one configuration's runs, paired with every other's."""
        return {s: make(s) for s in self.seeds}

    def evaluations(self, pretrained: dict[int, Run | None]) -> dict[int, dict[str, Run]]:
        """The evaluation runs of one configuration, per seed: {seed: {"lp": linear probe, "ft": finetune}}.

        The linear probe (with its kNN on the same features) runs at every seed; finetuning, the paper's metric for
        most accuracy claims, at every seed of the gpu and paper scales, at the first seed at smoke scale (the path
        exercised; one seed decides nothing), and not at the cpu scale (``scales.Scale.finetune_seeds``).
        Each evaluation uses the seed of its pretraining, so the arms of a comparison stay paired."""
        ft_seeds = self.record.finetune_seeds_of(self.seeds)
        out = {}
        for s, pre in pretrained.items():
            out[s] = {"lp": self.linprobe(pre, {"seed": s})}
            if s in ft_seeds:
                out[s]["ft"] = self.finetune(pre, {"seed": s})
        return out

    # --------------------------------------------------------------------------------------------------
    # what notebooks analyse
    @property
    def torch_device(self) -> str:
        """The device this study's analyses run on: its ``device``, with 'auto' resolved (CUDA when available)."""
        return configs.check_device(self.device)

    def model(self, run: Run):
        """The trained model of a run (an MAE, LC-MAE, AE or SimCLR, or a timm ViT for finetune/linprobe), in eval
        mode, on the CPU: the analysis functions move a model to the device they are given (``torch_device`` is
        the study's), so that loading many seeds' models does not fill a GPU before any is measured."""
        model, _ = load_run(run.checkpoint)
        return model.eval()

    def init_model(self, run: Run):
        """The run's model at its initialisation (same shape, same seed): the random-init null control."""
        return load_run_init(run.dir)

    def images(self, n: int = 64, split: str = "val", dataset: str | None = None, with_labels: bool = False,
               seed: int | None = None):
        """n images of a labelled split with the eval transform, drawn at random with ``seed`` (default: the
        study's ``image_seed``) and stratified over the classes: (n, C, H, W) [, labels (n,)].

        A folder set (``imagefolder``, ``imagenet``) reads any folder of images, flat or of class folders:
        ``<data_root>/<split>`` when it exists, else ``data_root`` itself; only the sampled files are opened."""
        name = dataset or self.labelled()
        seed = self.image_seed if seed is None else seed
        if name in data.FOLDER_DATASETS:
            paths, labels, _ = data.list_image_files(data.analysis_folder(self.data_root, split))
            idx = data.stratified_sample(labels, n, seed)
            tf = data.build_transform("eval", data.dataset_info(name), self.config("finetune").model.img_size)
            imgs = data.load_images([paths[i] for i in idx], tf)
            labels = torch.as_tensor([labels[i] for i in idx])
        else:
            ds = eval_dataset(self.config("finetune"), name, split)
            idx = data.stratified_sample(data.labels_of(ds), n, seed)
            items = [ds[int(i)] for i in idx]
            imgs = torch.stack([x for x, _ in items])
            labels = torch.tensor([int(y) for _, y in items])
        return (imgs, labels) if with_labels else imgs

    def image_record(self, n: int, split: str = "val", dataset: str | None = None) -> dict:
        """Where a page's images came from, for its metrics: dataset, folder (folder sets), n_images, seed."""
        name = dataset or self.labelled()
        out = {"dataset": name, "n_images": n, "sampling_seed": self.image_seed}
        if name in data.FOLDER_DATASETS:
            out["folder"] = data.analysis_folder(self.data_root, split)
        return out

    @staticmethod
    def _encoder_of(pretrain: Run | None) -> dict:
        """The encoder shape of the pretraining run, so the classifier matches it."""
        return {} if pretrain is None else configs.encoder_overrides(pretrain.config["model"])


def describe(cfg) -> str:
    """A short, deterministic description of a run's config (for notebook output)."""
    m = cfg.model
    solved = getattr(cfg, "probe", None) == "logreg"  # the converged probe: no epochs, a regression solved
    parts = [cfg.family, f"ViT dim {m.embed_dim} depth {m.depth} patch {m.patch_size} on {m.img_size} px",
             f"{cfg.data.dataset}", "logistic regression, C on held-out" if solved else f"{cfg.optim.epochs} epochs"]
    if cfg.family == "simclr":
        parts.insert(1, f"projector {m.proj_dim}")
    elif cfg.family in configs.PRETRAIN_FAMILIES:
        parts.insert(1, f"decoder {m.decoder} x{m.decoder_depth}")
        if cfg.family != "ae":
            parts.append(f"mask {cfg.mask_ratio}")
        if cfg.family == "lcmae":
            parts.append(f"setting {m.setting or 'a'}")
        if cfg.family == "ae":
            parts.append(f"block {m.block_size or m.patch_size}")
    else:
        parts.append(f"from {cfg.pretrain or 'random init'}")
    return ", ".join(parts)
