"""Configs: presets, overrides with type checking, dict round trip, hashing, validation."""

import pytest

from lcmae_core import configs, scales
from lcmae_core.configs import ConfigError


@pytest.mark.parametrize("family", configs.ALL_FAMILIES)
@pytest.mark.parametrize("scale", scales.NAMES)
def test_every_preset_validates_and_round_trips(family, scale):
    cfg = configs.preset(family, scale)
    if scale != "smoke" and scale != "cpu":
        cfg.device = "cpu"  # the device is not part of the recipe
    configs.validate(cfg)
    back = configs.from_dict(configs.to_dict(cfg))
    assert back == cfg and configs.config_hash(back) == configs.config_hash(cfg)


def test_paper_preset_is_section_5():
    mae, lc = configs.preset("mae", "paper"), configs.preset("lcmae", "paper")
    assert (mae.optim.batch_size, mae.optim.epochs, mae.optim.warmup_epochs) == (1024, 100, 20)
    assert mae.optim.base_lr == 1.5e-4 and lc.optim.base_lr == 6e-4 and mae.optim.betas == (0.9, 0.95)
    assert mae.optim.absolute_lr() == pytest.approx(1.5e-4 * 4)
    assert mae.mask_ratio == 0.75 and mae.model.norm_pix_loss and lc.model.decoder_depth == 2
    assert mae.model.decoder_depth == 8 and mae.model.embed_dim == 768
    ft, lp = configs.preset("finetune", "paper"), configs.preset("linprobe", "paper")
    assert (ft.optim.epochs, ft.optim.batch_size, ft.optim.base_lr, ft.optim.warmup_epochs) == (100, 1024, 1e-3, 5)
    assert (ft.optim.layer_decay, ft.drop_path, ft.mixup, ft.cutmix, ft.smoothing) == (0.75, 0.1, 0.8, 1.0, 0.1)
    assert (lp.optim.optimizer, lp.optim.base_lr, lp.optim.batch_size, lp.optim.epochs) == ("lars", 0.1, 16384, 90)
    assert lp.optim.weight_decay == 0 and lp.optim.warmup_epochs == 10


def test_overrides_parse_and_type_check():
    cfg = configs.preset("lcmae", "smoke")
    new = configs.apply_overrides(cfg, ["optim.epochs=3", "mask_ratio=0.6", "model.setting=c",
                                        "data.crop_scale=0.5,1.0", "model.norm_pix_loss=false",
                                        "optim.lr=none", "data.limit=null"])
    assert (new.optim.epochs, new.mask_ratio, new.model.setting) == (3, 0.6, "c")
    assert new.data.crop_scale == (0.5, 1.0) and new.model.norm_pix_loss is False and new.data.limit is None
    assert cfg.optim.epochs == 1  # the original is untouched
    with pytest.raises(ConfigError, match="unknown config key 'optim.epoch'"):
        configs.apply_overrides(cfg, ["optim.epoch=3"])
    with pytest.raises(ConfigError, match="did you mean optim.epochs"):
        configs.apply_overrides(cfg, ["epochs=3"])
    with pytest.raises(ConfigError, match="integer"):
        configs.apply_overrides(cfg, ["optim.epochs=2.5"])
    with pytest.raises(ConfigError, match="true or false"):
        configs.apply_overrides(cfg, ["model.norm_pix_loss=maybe"])
    with pytest.raises(ConfigError, match="key=value"):
        configs.apply_overrides(cfg, ["optim.epochs"])
    with pytest.raises(ConfigError, match="group"):
        configs.apply_overrides(cfg, ["optim=3"])


def test_hash_ignores_device_and_paths_but_not_recipe():
    a = configs.preset("mae", "smoke")
    h = configs.config_hash(a)
    b = configs.apply_overrides(a, ["device=cpu", "data.root=/elsewhere", "log_every=7", "progress=false"])
    assert configs.config_hash(b) == h
    assert configs.config_hash(configs.apply_overrides(a, ["mask_ratio=0.5"])) != h
    assert configs.run_name(a) == f"mae-{h}"


def test_a_decoder_rate_multiple_is_a_new_run_and_one_rate_keeps_the_names():
    a = configs.preset("mae", "smoke")
    same = configs.apply_overrides(a, ["optim.decoder_lr_scale=1"])
    assert configs.config_hash(same) == configs.config_hash(a)
    assert configs.config_hash(configs.apply_overrides(a, ["optim.decoder_lr_scale=2"])) != configs.config_hash(a)
    with pytest.raises(ConfigError, match="decoder_lr_scale"):
        configs.validate(configs.apply_overrides(a, ["optim.decoder_lr_scale=0"]))
    with pytest.raises(ConfigError, match="has none"):
        configs.validate(configs.apply_overrides(configs.preset("simclr", "smoke"), ["optim.decoder_lr_scale=2"]))


@pytest.mark.parametrize("override,match", [
    ("mask_ratio=1.0", "mask ratio"), ("mask_ratio=-0.1", "mask ratio"),
    ("model.img_size=30", "not divisible by patch size"), ("data.dataset=nope", "unknown dataset"),
    ("scale=huge", "unknown scale"), ("optim.optimizer=sgd", "unknown optimizer"),
    ("optim.accum_iter=3", "divisible"), ("model.setting=z", "setting"),
])
def test_validate_rejects(override, match):
    with pytest.raises(ConfigError, match=match):
        configs.validate(configs.apply_overrides(configs.preset("mae", "smoke"), [override]))


def test_unknown_family_and_scale():
    with pytest.raises(ConfigError, match="unknown family"):
        configs.preset("byol", "cpu")
    with pytest.raises(ConfigError, match="unknown scale"):
        configs.preset("mae", "laptop")


def test_model_kwargs_per_family():
    m = configs.preset("mae", "cpu").model
    assert "proj_dim" not in m.kwargs("mae") and m.kwargs("lcmae")["proj_dim"] == m.proj_dim
    assert m.kwargs("ae")["block_size"] == m.patch_size
    from lcmae_core.models import FAMILIES
    assert m.kwargs("simclr") == {**m.encoder_kwargs(), "proj_dim": m.proj_dim}  # no decoder
    for fam in ("mae", "lcmae", "ae", "simclr"):
        FAMILIES[fam](**configs.preset(fam, "smoke").model.kwargs(fam))
