"""Training: one epoch loop for every family (``engine``), the epochs around it (``trainer.fit``), the three
recipes (``pretrain``, ``finetune``, ``linprobe``), checkpoints, the LR schedule and DDP helpers.

Most callers want ``lcmae_core.runs.run_or_load(config)`` instead of these pieces.
"""
