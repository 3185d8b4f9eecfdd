"""The GPU performance command, rehearsed on the CPU: fb/mae's training step as ``bench/official.py`` writes it,
the side-by-side ratio (``bench/official_ratio.py``) and ``bench/gpu_suite.sh`` end to end at the smoke size.

The official code is never committed, so these tests import a **stand-in** ``models_mae.py`` (our own
``MaskedAutoencoderViT`` under fb/mae's module layout and constructor: a ``Block`` to patch, a ``norm_layer``
argument). What they check is the plumbing: the loop, the timing, the records, the script's sections. The same
tests run against a real checkout of facebookresearch/mae when one is at ``.official/mae`` (ignored by git), which
is how the numbers were checked to agree (ours loads the official weights and gives the same fp32 loss).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from lcmae_core.perf.workloads import MODES, WORKLOADS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, BENCH)

import official  # noqa: E402
import official_ratio  # noqa: E402

STANDIN = '''"""A stand-in for facebookresearch/mae's models_mae.py (tests only): its layout and constructor, our model."""
from timm.models.vision_transformer import Block  # noqa: F401 - bench/official.py patches models_mae.Block
from lcmae_core.models import MaskedAutoencoderViT as _Ours


class MaskedAutoencoderViT(_Ours):
    def __init__(self, norm_layer=None, **kwargs):
        super().__init__(**kwargs)
'''
REAL = os.path.join(ROOT, ".official", "mae")


@pytest.fixture(params=["stand-in", "facebookresearch/mae"])
def official_dir(request, tmp_path):
    if request.param == "stand-in":
        (tmp_path / "models_mae.py").write_text(STANDIN)
        return str(tmp_path)
    if not os.path.isfile(os.path.join(REAL, "models_mae.py")):
        pytest.skip("no checkout of facebookresearch/mae at .official/mae")
    return REAL


TINY = dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
            decoder_num_heads=2, mlp_ratio=4.0, norm_pix_loss=True)


def test_the_official_step_is_fbmae_s_loop(official_dir):
    """One step: the loss as a float, the gradients' total norm before the update, weights moved, grads cleared."""
    mod = official.import_official(official_dir)
    torch.manual_seed(0)
    model = official.official_model(mod, TINY)
    twin = copy.deepcopy(model)
    imgs = torch.randn(4, 3, 16, 16)
    step = official.OfficialStep(model, official.official_optimizer(model, 1e-3), imgs, lr=1e-3)
    torch.manual_seed(1)
    loss = step()
    torch.manual_seed(1)
    twin_loss = twin(imgs, mask_ratio=0.75)[0]
    twin_loss.backward()
    assert isinstance(loss, float) and loss == pytest.approx(float(twin_loss.detach()), rel=1e-6)
    expected = torch.nn.utils.get_total_norm([p.grad for p in twin.parameters() if p.grad is not None])
    assert float(step.last_norm) == pytest.approx(float(expected), rel=1e-5)
    assert all(p.grad is None for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))
    assert not step.scaler.is_enabled()  # fp16 autocast and loss scaling are CUDA's, as in fb/mae


def test_the_official_optimizer_is_main_pretrain_s(official_dir):
    mod = official.import_official(official_dir)
    model = official.official_model(mod, TINY)
    opt = official.official_optimizer(model, 1e-3)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.95)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            no_decay = p.ndim <= 1 or names[id(p)].endswith(".bias")
            assert group["weight_decay"] == (0.0 if no_decay else 0.05), names[id(p)]


def test_the_ratio_alternates_both_steps_and_records_them(official_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.jsonl"
    fresh = []  # each workload starts from a fresh dynamo: an earlier one's graphs would make its batch dynamic
    monkeypatch.setattr(official_ratio, "fresh", lambda device: fresh.append(str(device)))
    code = official_ratio.main(["--official-dir", official_dir, "--device", "cpu", "--workloads", "tiny,lcmae_tiny",
                                "--mode", "fp32", "--steps", "2", "--warmup", "1", "--rounds", "3",
                                "--out", str(out)])
    assert code == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["workload"] for r in recs] == ["tiny", "lcmae_tiny"]
    for r in recs:
        assert len(r["ms_blocks"]["ours"]) == len(r["ms_blocks"]["official"]) == 3
        assert r["ratio"] == pytest.approx(r["img_per_s_ours"] / r["img_per_s_official"], rel=1e-2)
        assert r["command"].startswith("python ") and "--official-dir" in r["command"]
    assert fresh == ["cpu", "cpu"]
    assert all(r["timm"] and r["official_attention"].split()[0] in ("fused", "explicit") for r in recs)
    mae, lcmae = recs
    assert mae["views_official"] == 1 and lcmae["views_official"] == 2
    assert mae["loss_fp32_before"]["ours"] == pytest.approx(mae["loss_fp32_before"]["official"], rel=1e-5)
    assert "ratio" in capsys.readouterr().out


def test_the_ratio_under_cuda_graphs_asks_them_of_our_step(tmp_path):
    """--cuda-graphs reaches our step's compile mode (on CUDA reduce-overhead; here, where it cannot apply, the record
    says it was asked for and ignored); fb/mae's loop stays as published."""
    (tmp_path / "models_mae.py").write_text(STANDIN)
    out = tmp_path / "r.jsonl"
    base = ["--official-dir", str(tmp_path), "--device", "cpu", "--workloads", "tiny", "--mode", "fp32", "--steps",
            "1", "--warmup", "1", "--rounds", "1", "--out", str(out)]
    assert official_ratio.main(base) == 0 and official_ratio.main([*base, "--cuda-graphs"]) == 0
    plain, graphs = [json.loads(line) for line in out.read_text().splitlines()]
    assert "--cuda-graphs" in graphs["command"] and "--cuda-graphs" not in plain["command"]
    assert "cuda graphs requested but the device is not CUDA: ignored" in graphs["notes"] and "notes" not in plain
    assert plain["cuda_graphs_ours"] is False and graphs["cuda_graphs_ours"] is False
    assert plain["mode_official"] == graphs["mode_official"]


def test_a_workload_that_fails_is_recorded_and_the_others_still_run(tmp_path, capsys, monkeypatch):
    (tmp_path / "models_mae.py").write_text(STANDIN)
    out = tmp_path / "r.jsonl"

    def disagree(*a, **k):
        raise official_ratio.Disagreement("the two models disagree before timing: ours 1.0, official 2.0")

    monkeypatch.setattr(official_ratio, "same_numbers", disagree)  # the MAE workload's check; LC-MAE has none
    code = official_ratio.main(["--official-dir", str(tmp_path), "--device", "cpu", "--workloads", "tiny,lcmae_tiny",
                                "--mode", "fp32", "--steps", "1", "--warmup", "1", "--rounds", "1", "--out", str(out)])
    assert code == 1
    bad, good = [json.loads(line) for line in out.read_text().splitlines()]
    assert bad["workload"] == "tiny" and bad["error"].startswith("Disagreement: the two models disagree")
    assert good["workload"] == "lcmae_tiny" and good["ratio"] > 0
    captured = capsys.readouterr()
    assert "tiny: FAILED" in captured.err and "1 workload(s) failed" in captured.out


def test_a_folder_without_the_official_code_is_one_line(tmp_path, capsys):
    code = official_ratio.main(["--official-dir", str(tmp_path), "--device", "cpu", "--workloads", "tiny"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "models_mae.py" in err and "git clone https://github.com/facebookresearch/mae" in err
    code = official_ratio.main(["--official-dir", str(tmp_path), "--device", "cpu", "--workloads", "loader"])
    assert code == 2


def test_the_suite_names_only_known_workloads_modes_and_options():
    """The suite runs on a lent GPU with minutes to spare: a typo there would waste them."""
    import argparse

    from lcmae_core.perf import bench as B

    text = open(os.path.join(BENCH, "gpu_suite.sh")).read()
    for var, value in re.findall(r"\b(MAE|LCMAE|T4|AE|SMALL)=(\w+)", text):
        assert value in WORKLOADS, (var, value)
    for var, value in re.findall(r"\b(MODE|MODES|NUM_MODES|SMALL_MODES)=([\w,]+)", text):
        assert set(value.split(",")) <= set(MODES), (var, value)
    for group in re.findall(r"--workloads (\S+)", text):
        assert {w for w in group.split(",") if not w.startswith("$")} <= set(WORKLOADS), group
    for group in re.findall(r"--modes (\S+)", text):
        assert {m for m in group.split(",") if not m.startswith("$")} <= set(MODES), group
    p = argparse.ArgumentParser()
    B.add_arguments(p)
    known = {o for a in p._actions for o in a.option_strings}
    known |= {"--official-dir", "--mode", "--rounds", "--num", "--jobs"}  # official_ratio.py, make_jpegs.py
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    assert used <= known, used - known


def test_the_suite_rehearses_every_section_on_the_cpu(tmp_path):
    """Every section but autotune (minutes of CPU compilation) end to end at the smoke size: each writes its
    records, no measurement fails, and the results land in $RESULTS."""
    off = tmp_path / "official"
    off.mkdir()
    (off / "models_mae.py").write_text(STANDIN)
    res = tmp_path / "results"
    env = {**os.environ, "REHEARSAL": "1", "OFFICIAL": str(off), "PY": sys.executable, "RESULTS": str(res),
           "JPEGS": str(tmp_path / "jpegs"), "MPLBACKEND": "Agg"}
    sections = ["ratio", "profile", "numerics", "e2e", "data", "throughput", "graphs", "scale"]
    p = subprocess.run(["bash", os.path.join(BENCH, "gpu_suite.sh"), *sections], env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for s in sections:
        assert f"== {s} (" in p.stdout
    # the GPU path's checks ran once, before e2e (the first section that times it; skipped: no CUDA here)
    assert len(re.findall(r"\b\d+ skipped, \d+ deselected", p.stdout)) == 1
    (jsonl,) = res.glob("gpu_suite_*.jsonl")
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert not [r for r in recs if "error" in r]
    ratios = [r for r in recs if r.get("comparison") == "official_ratio"]
    assert len(ratios) == 5  # the ratio's three workloads, then the graphs section's two under CUDA graphs
    assert ["--cuda-graphs" in r["command"] for r in ratios] == [False] * 3 + [True] * 2
    assert [r["ok"] for r in recs if "check" in r] == [True, True]
    assert {r["workload"] for r in recs} >= {"e2e", "loader", "loader_pil"}
    assert len(list(res.glob("profile_*.json"))) == 2
    bad = subprocess.run(["bash", os.path.join(BENCH, "gpu_suite.sh"), "nope"], env=env, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "unknown section 'nope'" in bad.stderr
    # a section that fails (here: no official code) is reported, the next one runs, and the script exits 1
    env["OFFICIAL"] = str(tmp_path / "no-official")
    p = subprocess.run(["bash", os.path.join(BENCH, "gpu_suite.sh"), "ratio", "profile"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 1 and "== ratio failed (exit 2); going on" in p.stderr, p.stderr[-2000:]
    assert "== profile (" in p.stdout and "failed: ratio" in p.stdout
    # a command that runs past CAP_S seconds is stopped (timeout's exit 124) and counts as its section's failure
    p = subprocess.run(["bash", os.path.join(BENCH, "gpu_suite.sh"), "profile"], env={**env, "CAP_S": "0.2"},
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 1 and "== profile failed (exit 124); going on" in p.stderr, p.stderr[-2000:]
