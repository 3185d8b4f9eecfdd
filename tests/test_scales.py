"""A scale is one record (``lcmae_core.scales``): the presets, the studies, the planner and the book's helpers read
it; adding a scale is adding a record; no code or notebook branches on a scale's name; and the runs every scale plans
keep their names (config hashes) unless a recipe changed on purpose."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from lcmae_core import configs, plan, scales
from lcmae_core.configs import ConfigError
from lcmae_core.experiments import Study

REPO = Path(__file__).resolve().parent.parent
PLAN_NAMES = Path(__file__).resolve().parent / "data" / "plan_names.json"


def test_the_runs_each_scale_plans_keep_their_names():
    """The committed names were made by the code before a change; a recipe changed on purpose regenerates them with
    python -c "import json; from lcmae_core import plan, configs, scales; json.dump({s: sorted(configs.run_name(c)
    for c in plan.plan_runs(s)) for s in scales.NAMES}, open('tests/data/plan_names.json', 'w'), indent=0)"."""
    committed = json.loads(PLAN_NAMES.read_text())
    assert set(committed) == set(scales.NAMES)
    for scale in scales.NAMES:
        now = sorted(configs.run_name(c) for c in plan.plan_runs(scale))
        assert now == committed[scale], (scale, sorted(set(now) ^ set(committed[scale]))[:6])


def test_every_record_builds_every_family():
    for name, rec in scales.SCALES.items():
        assert rec.name == name and rec.seeds and rec.hardware
        for family in configs.ALL_FAMILIES:
            cfg = configs.validate(configs.preset(family, name))
            assert cfg.scale == name
        assert Study(scale=name).seeds == rec.seeds


def test_adding_a_scale_is_adding_one_record(monkeypatch, tmp_path):
    tiny = dataclasses.replace(scales.SMOKE, name="tiny", seeds=(5,), hardware="anything; a blink",
                               data={**scales.SMOKE.data, "limit": 64})
    monkeypatch.setitem(scales.SCALES, "tiny", tiny)
    monkeypatch.setattr(scales, "NAMES", (*scales.NAMES, "tiny"))
    cfg = configs.preset("mae", "tiny")
    assert cfg.data.limit == 64 and cfg.scale == "tiny" and cfg.threads == 1
    study = Study(scale="tiny", run_root=str(tmp_path), verbose=False)
    assert study.seeds == (5,) and study.record is tiny
    names = {configs.run_name(c) for c in plan.plan_runs("tiny", ["table1_lcmae_ablation"])}
    assert names and all(configs.from_dict(configs.to_dict(c)).seed == 5
                         for c in plan.plan_runs("tiny", ["table1_lcmae_ablation"]))
    from lcmae_core import book
    assert "a blink" in book.scale_admonition("tiny").data


def test_an_unknown_scale_is_one_line():
    with pytest.raises(ConfigError, match="unknown scale 'laptop'; choose one of smoke, cpu, gpu, cifar, paper"):
        configs.preset("mae", "laptop")
    with pytest.raises(ValueError, match="unknown scale 'laptop'"):
        scales.get("laptop")


def test_caps_and_derived_facts():
    smoke, cpu, paper = scales.SCALES["smoke"], scales.SCALES["cpu"], scales.SCALES["paper"]
    assert smoke.cap("fig5_attention_distance_pretraining", "n_images", 256) == 16
    assert smoke.cap("fig5_attention_distance_pretraining", "n_images", 8) == 8
    assert cpu.cap("fig5_attention_distance_pretraining", "n_images", 256) == 256
    assert smoke.finetune_seeds_of((0, 1)) == (0,) and cpu.finetune_seeds_of((0, 1, 2)) == ()
    assert paper.finetune_seeds_of((0,)) == (0,)
    assert smoke.parallel_runs and cpu.parallel_runs and not paper.parallel_runs
    assert smoke.calibrates_live and not cpu.calibrates_live and not paper.calibrates_live


# ------------------------------------------------------------------------------------------------------------
# no code or notebook spells out a scale's name to decide something: the record says it
SCALE_NAMES = set(scales.NAMES)


def scale_branches(source: str, where: str) -> list[str]:
    """"where:line" of every comparison of something named ``scale`` (or ``*.scale``) with a scale's name, or
    membership of it in literal names."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        named = any((isinstance(s, ast.Name) and s.id == "scale") or (isinstance(s, ast.Attribute) and s.attr == "scale")
                    for s in sides)
        literal = set()
        for s in sides:
            if isinstance(s, ast.Constant) and isinstance(s.value, str):
                literal.add(s.value)
            if isinstance(s, (ast.Tuple, ast.List, ast.Set)):
                literal |= {e.value for e in s.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        if named and literal & SCALE_NAMES:
            out.append(f"{where}:{node.lineno}")
    return out


def test_nothing_branches_on_a_scale_name():
    found = []
    for path in (REPO / "lcmae_core").rglob("*.py"):
        if path.name != "scales.py":
            found += scale_branches(path.read_text(), str(path.relative_to(REPO)))
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        for i, c in enumerate(cells):
            if c["cell_type"] == "code":
                found += scale_branches("".join(c["source"]), f"{nb.name}[{i}]")
    assert found == []


def test_the_branch_finder_finds_one():
    assert scale_branches('if scale == "smoke":\n    pass\nif study.scale in ("gpu", "paper"):\n    pass\n', "x") == \
        ["x:1", "x:3"]
    assert scale_branches('if scale == "custom":\n    pass\nif kind == "cpu":\n    pass\n', "x") == []
