"""The performance machinery, kept apart from the paper's code (models, losses, masking, the training recipes).

- ``perf.bench``: ``python -m lcmae_core bench``, the throughput, memory and MFU benchmark of named workloads,
  built from ``workloads`` (what is measured), ``measure`` (the timed training step), ``flops`` (FLOP counts and
  peaks), ``profiling`` (where a step's time goes) and ``records`` (the JSON-lines results files);
The speed-ups that training itself uses live below it, where the layers allow training to import them:
``train.compile`` (``torch.compile`` of the training objective with a fallback to eager, and CUDA graphs) and
``gpu_data`` (the GPU data path: JPEG bytes in workers, decoding and augmentation on the device; the batched
in-memory augmentation of the bundled sets; ``choose_data_path``, which picks a data path).

Nothing is re-exported here: import the module that defines a name.
"""
