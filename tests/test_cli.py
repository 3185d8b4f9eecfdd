"""The command line: bad input gives one line on stderr, a non-zero exit and no run folder; reuse; --help."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from lcmae_core import cli


pytestmark = pytest.mark.usefixtures("one_thread")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imagefolder(root, corrupt=False):
    for split in ("train", "val"):
        for c in ("a", "b"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (32, 32), (40 * i, 100, 30)).save(d / f"{i}.png")
    if corrupt:
        (root / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return str(root)


def _bad_cases(tmp_path):
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "val").mkdir()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    return {
        "missing data root": ["--dataset", "imagefolder", "--data-root", str(tmp_path / "missing")],
        "empty data root": ["--dataset", "imagefolder", "--data-root", str(empty)],
        "corrupt image": ["--dataset", "imagefolder", "--data-root", _imagefolder(tmp_path / "bad", corrupt=True),
                          "--set", "model.img_size=28"],
        "unknown dataset": ["--dataset", "mnist60k"],
        "unknown preset": ["--family", "byol"],
        "unknown scale": ["--scale", "laptop"],
        "mask ratio 1": ["--set", "mask_ratio=1.0"],
        "mask ratio negative": ["--set", "mask_ratio=-0.2"],
        "img not divisible": ["--set", "model.img_size=30"],
        "cuda without gpu": ["--set", "device=cuda"],
        "unwritable root": ["--run-root", str(blocker / "runs")],
        "unknown key": ["--set", "optim.warmup=3"],
        "bad value": ["--set", "optim.epochs=many"],
    }


# each failure path once in a real subprocess; the rest in-process (same code, no interpreter start-up)
IN_SUBPROCESS = ("empty data root", "corrupt image", "unknown scale", "mask ratio 1", "cuda without gpu",
                 "unwritable root", "unknown key")


def _argv(extra, root):
    args = ["pretrain", "--scale", "smoke", "--no-progress"]
    return args + (["--run-root", str(root)] if "--run-root" not in extra else []) + extra


def test_bad_input_in_process(tmp_path, capsys):
    root = tmp_path / "runs"
    for name, extra in _bad_cases(tmp_path).items():
        if name in IN_SUBPROCESS:
            continue
        assert cli.main(_argv(extra, root)) != 0, name
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
    assert not root.exists() or [p for p in os.listdir(root) if not p.startswith(".")] == []


def test_bad_input_one_line_nonzero_no_run_dir(tmp_path):
    root = tmp_path / "runs"
    cases = {k: v for k, v in _bad_cases(tmp_path).items() if k in IN_SUBPROCESS}
    env = {**os.environ, "PYTHONWARNINGS": "default", "OMP_NUM_THREADS": "1"}
    procs = {}
    for name, extra in cases.items():
        args = [sys.executable, "-m", "lcmae_core"] + _argv(extra, root)
        procs[name] = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    for name, p in procs.items():
        out, err = p.communicate(timeout=120)
        lines = err.strip().splitlines()
        assert p.returncode != 0, name
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        assert "Traceback" not in err, name
    leftovers = [p for p in os.listdir(root) if not p.startswith(".")] if root.exists() else []
    assert leftovers == []


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--help"])
    text = capsys.readouterr().out
    for opt in ("--family", "--scale", "--run-root", "--dataset", "--data-root", "--set", "--launcher",
                "--show-config"):
        assert opt in text
    with pytest.raises(SystemExit):
        cli.main(["finetune", "--help"])
    assert "--pretrain" in capsys.readouterr().out


def test_second_identical_call_reuses_the_run(tmp_path, capsys):
    argv = ["finetune", "--scale", "smoke", "--run-root", str(tmp_path), "--no-progress",
            "--set", "data.limit=128", "--pretrain-set", "knn=false", "data.limit=128"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    runs_made = sorted(p for p in os.listdir(tmp_path) if not p.startswith("."))
    assert [p.split("-")[0] for p in runs_made] == ["finetune", "mae"]
    stamp = {p: os.stat(tmp_path / p / "checkpoint.pt").st_mtime_ns for p in runs_made}
    assert cli.main(argv) == 0
    second = capsys.readouterr().out
    assert first == second
    assert stamp == {p: os.stat(tmp_path / p / "checkpoint.pt").st_mtime_ns for p in runs_made}
    metrics = json.loads(second.split("\n", 1)[1])
    assert metrics["family"] == "finetune" and "top1" in metrics


def test_show_config_prints_the_resolved_config(capsys):
    assert cli.main(["linprobe", "--scale", "smoke", "--family", "none", "--set", "optim.epochs=5",
                     "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["family"] == "linprobe" and cfg["optim"]["epochs"] == 5 and cfg["pretrain"] is None


def test_subcommands_are_registrations():
    called = {}
    cli.register_command("hello", "say hello", lambda p: p.add_argument("--name"),
                         lambda a: called.update(name=a.name))
    try:
        assert cli.main(["hello", "--name", "x"]) == 0 and called == {"name": "x"}
    finally:
        cli.COMMANDS.pop("hello")
