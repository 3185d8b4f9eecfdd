"""Typed run configs, one place for every recipe, split by concern:

- ``configs.schema``: the run configs of every family (``ModelConfig``, ``DataConfig``, ``OptimConfig``,
  ``PretrainConfig``, ``FinetuneConfig``, ``LinprobeConfig``), their serialisation (``to_dict``/``from_dict``) and
  hashing into run names (``config_hash``, ``run_name``), overrides (``apply_overrides``) and validation
  (``validate``, one line per bad value);
- ``configs.presets``: a family's recipe at a scale, built from the scale's record (``lcmae_core.scales``), with
  overrides on top (``build``), and the attention recipe's calibration candidates.

The package is their public interface: ``from lcmae_core import configs; configs.build("mae", "cpu")``.
"""

from .presets import (build, calibration_candidates, data_preset, labelled_for_classifiers, model_preset, preset,
                      scale_record)
from .schema import (ALL_FAMILIES, AUGMENT_BACKENDS, BATCHED_DATASETS, COMPILE_MODES, CONFIG_CLASSES, EVAL_FAMILIES,
                     NOT_HASHED, PRETRAIN_FAMILIES, PROBES, TABLE1_DECODER_DEPTH, ConfigError, DataConfig,
                     FinetuneConfig, LinprobeConfig, ModelConfig, OptimConfig, PretrainConfig, RunConfig,
                     apply_overrides, augment_backend, check_device, check_scale, config_hash, encoder_overrides,
                     from_dict, run_name, to_dict, valid_keys, validate)

__all__ = ["build", "calibration_candidates", "data_preset", "labelled_for_classifiers", "model_preset", "preset", "scale_record",
           "ALL_FAMILIES", "AUGMENT_BACKENDS", "BATCHED_DATASETS", "COMPILE_MODES", "CONFIG_CLASSES", "EVAL_FAMILIES",
           "NOT_HASHED", "PRETRAIN_FAMILIES", "PROBES", "TABLE1_DECODER_DEPTH", "ConfigError", "DataConfig",
           "FinetuneConfig", "LinprobeConfig", "ModelConfig", "OptimConfig", "PretrainConfig", "RunConfig",
           "apply_overrides", "augment_backend", "check_device", "check_scale", "config_hash", "encoder_overrides",
           "from_dict", "run_name", "to_dict", "valid_keys", "validate"]
