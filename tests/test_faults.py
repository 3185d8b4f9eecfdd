"""Fault injection at every entry point: a wrong type, an out-of-range value, a missing path, a path under a regular
file, a corrupt file and an interrupt each end in one line on stderr with the documented exit code (2 for bad
input, 1 for a failure, 130 for an interrupt), and leave nothing behind: no run folder, no lock, no executed
notebook, no temporary file."""

from __future__ import annotations

import json
import os
import pickle
import stat

import pytest
import torch

from lcmae_core import atomic, batch, build, configs, errors, parameters, results
from lcmae_core.cli import main
from lcmae_core.pretrained import CheckpointError, read_checkpoint


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def one_line(err: str) -> bool:
    return bool(err) and len(err.splitlines()) == 1 and "Traceback" not in err


def left_behind(root) -> list[str]:
    """Run folders, locks and temporary files under a run root (the root itself and .probe files do not count)."""
    if not os.path.isdir(root):
        return []
    out = []
    for dirpath, dirs, files in os.walk(root):
        out += [os.path.join(dirpath, f) for f in files if not f.startswith(".probe")]
        out += [os.path.join(dirpath, d) for d in dirs if not d.startswith(".")]
    return out


SMOKE = ["--scale", "smoke", "--no-progress"]


@pytest.mark.parametrize("argv, words", [
    (["--set", "optim.epochs=abc"], "takes an integer"),  # wrong type
    (["--set", "mask_ratio=1.5"], "mask ratio must be in [0, 1)"),  # out of range
    (["--set", "mask_ratio=0"], "nothing to reconstruct"),
    (["--set", "model.num_heads=0"], "model.num_heads must be a positive integer"),
    (["--set", "optim.lr=nan"], "optim.lr must be a finite number"),
    (["--set", "optim.base_lr=-1"], "optim.base_lr must be a finite number"),
    (["--family", "lcmae", "--set", "model.setting=cd"], "unknown LC-MAE setting 'cd'"),
    (["--family", "lcmae", "--set", "model.setting="], "unknown LC-MAE setting ''"),
    (["--set", "optim.batch_size=100000"], "larger than the training set"),
    (["--dataset", "imagefolder", "--data-root", "/nonexistent/images"], "does not exist"),  # missing path
    (["--set", "device=gpu0"], "unknown device 'gpu0'"),
])
def test_pretrain_bad_input_is_one_line_and_leaves_no_run(tmp_path, capsys, argv, words):
    code, err = run_cli(capsys, "pretrain", *SMOKE, "--run-root", str(tmp_path / "runs"), *argv)
    assert code == 2 and one_line(err) and words in err, err
    assert not left_behind(tmp_path / "runs")


def test_a_run_root_under_a_regular_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(capsys, "pretrain", *SMOKE, "--run-root", str(tmp_path / "file" / "runs"))
    assert code == 2 and one_line(err) and "not writable" in err


def _smoke_run_dir(root) -> str:
    cfg = configs.apply_overrides(configs.preset("mae", "smoke"), {"progress": False})
    path = os.path.join(root, configs.run_name(cfg))
    os.makedirs(path)
    atomic.atomic_write_json(os.path.join(path, "config.json"), configs.to_dict(cfg))
    return path


@pytest.mark.parametrize("content, words", [(b"", "is empty"), (b"not a zip file at all", "cannot be read"),
                                            (None, "cannot be read")])
def test_a_corrupt_checkpoint_on_resume_names_the_file_and_the_fix(tmp_path, capsys, content, words):
    path = _smoke_run_dir(tmp_path)
    ckpt = os.path.join(path, "checkpoint.pt")
    if content is None:  # a real checkpoint cut in half
        buf = torch.nn.Linear(64, 64).state_dict()
        torch.save({"model": buf}, ckpt)
        with open(ckpt, "rb") as f:
            data = f.read()
        content = data[: len(data) // 2]
    with open(ckpt, "wb") as f:
        f.write(content)
    code, err = run_cli(capsys, "pretrain", *SMOKE, "--run-root", str(tmp_path))
    assert code == 1 and one_line(err) and words in err and ckpt in err and "remove that run's folder" in err, err


def test_a_cut_off_metrics_file_names_the_file(tmp_path, capsys):
    path = _smoke_run_dir(tmp_path)
    with open(os.path.join(path, "metrics.json"), "w") as f:
        f.write('{"top1": 12.')
    code, err = run_cli(capsys, "pretrain", *SMOKE, "--run-root", str(tmp_path))
    assert code == 2 and one_line(err) and "metrics.json is not valid JSON" in err and "remove that run's folder" in err


def test_an_interrupt_during_start_up_is_one_line(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(configs.presets, "preset", interrupted)  # what configs.build calls
    code, err = run_cli(capsys, "pretrain", *SMOKE, "--run-root", str(tmp_path / "runs"))
    assert code == 130 and one_line(err) and "interrupted" in err
    assert not left_behind(tmp_path / "runs")


def test_values_are_normalised_before_hashing():
    a = configs.apply_overrides(configs.preset("lcmae", "cpu"), ["model.setting=A"])
    b = configs.apply_overrides(configs.preset("lcmae", "cpu"), ["model.setting=a"])
    assert configs.run_name(a) == configs.run_name(b)


# ---------------------------------------------------------------------------------------------------------------
# plan, batch, book, bench
@pytest.mark.parametrize("argv, code_, words", [
    (["plan", "--jobs", "0"], 2, "--jobs must be at least 1"),
    (["plan", "--only", "nope"], 2, "no runs are planned for nope"),
    (["batch", "--device", "gpu0"], 2, "unknown device 'gpu0'"),
    (["batch", "--only", "nope"], 2, "unknown notebook(s) nope"),
    (["batch", "--jobs", "0"], 2, "--jobs must be at least 1"),
    (["batch", "--only", "explorer", "-p", "nope", "1"], 2, "no selected notebook takes parameter 'nope'"),
    (["batch", "--only", "explorer", "-p", "mask_ratio", "abc"], 2, "takes a float"),
    (["batch", "--scale", "paper", "--only", "explorer", "--checkpoints", "/nonexistent"], 2, "does not exist"),
])
def test_batch_and_plan_bad_input_before_any_notebook(tmp_path, capsys, argv, code_, words):
    out = tmp_path / "executed"
    extra = ["--out", str(out)] if argv[0] == "batch" else []
    code, err = run_cli(capsys, *argv, "--run-root", str(tmp_path / "runs"), *extra)
    assert code == code_ and one_line(err) and words in err, err
    assert not list(out.glob("*.ipynb")) and not left_behind(tmp_path / "runs")


def test_bench_out_under_a_regular_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(capsys, "bench", "--device", "cpu", "--workloads", "tiny", "--out",
                        str(tmp_path / "afile" / "x.jsonl"))
    assert code == 2 and one_line(err) and "is a file, not a folder" in err


def test_the_book_refuses_to_publish_a_failed_notebook(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(build, "DEFAULT_OUT", tmp_path)
    (tmp_path / "run_status.json").write_text(json.dumps([{"notebook": "table1_lcmae_ablation", "ok": False},
                                                          {"notebook": "explorer", "ok": True}]))
    assert build.main(["--no-execute"]) == 1
    err = capsys.readouterr().err.strip()
    assert one_line(err) and "table1_lcmae_ablation" in err and "--publish-failures" in err
    assert build.main(["--jobs", "0"]) == 2
    (tmp_path / "run_status.json").write_text("[{")
    assert build.main(["--no-execute"]) == 1 and "not a run-status record" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# loaders and files
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_errors_are_one_line_and_never_advise_unsafe_loading(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty") as e:
        read_checkpoint(empty)
    assert one_line(str(e.value))
    evil = tmp_path / "evil.pth"
    torch.save({"model": Evil()}, evil)  # a pickle that would run os.system
    with pytest.raises(CheckpointError, match=r"does not trust \(posix.system\)") as e:
        read_checkpoint(evil)
    assert "weights_only" not in str(e.value) and "likely succeed" not in str(e.value) and one_line(str(e.value))
    with open(evil, "wb") as f:  # the same in a plain pickle: refused too, and the advice is still not repeated
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(CheckpointError, match="cannot be read") as e:
        read_checkpoint(evil)
    assert "weights_only" not in str(e.value) and "likely succeed" not in str(e.value)
    from lcmae_core.reference_models import load_run, read_weights

    for fn in (load_run, read_weights):
        with pytest.raises(CheckpointError, match="is empty"):
            fn(empty)


def test_the_quick_look_passes_whole_files_and_stops_cut_ones(tmp_path):
    from lcmae_core.pretrained import check_file

    good, legacy = tmp_path / "good.pth", tmp_path / "legacy.pth"
    torch.save({"model": torch.nn.Linear(8, 8).state_dict()}, good)
    torch.save({"model": torch.nn.Linear(8, 8).state_dict()}, legacy, _use_new_zipfile_serialization=False)
    assert check_file(good) == str(good) and check_file(legacy) == str(legacy)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:-100])
    for path, words in ((cut, "without its directory"), (tmp_path / "none.pth", "no checkpoint at"),
                        (tmp_path / "file", "neither a zip archive nor a pickle")):
        if path.name == "file":
            path.write_text("x")
        with pytest.raises(CheckpointError, match=words) as e:
            check_file(path)
        assert one_line(str(e.value))


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_honour_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        atomic.atomic_write_text(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.json").st_mode) == mode


def test_a_full_disk_at_a_checkpoint_says_so_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    from lcmae_core.train import checkpoint

    def full(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4096 vs 2048")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="the disk is full or failing"):
        checkpoint.atomic_save({"x": 1}, str(tmp_path / "checkpoint.pt"))
    assert not list(tmp_path.iterdir())


def test_a_data_loader_worker_error_is_its_last_line():
    e = RuntimeError("Caught DataError in DataLoader worker process 3.\nOriginal Traceback (most recent call last):\n"
                     '  File "x.py", line 1, in f\n    raise DataError(...)\n'
                     "lcmae_core.data.DataError: corrupt or unreadable image /d/val/x.JPEG: OSError: truncated\n")
    assert errors.summary(e) == ("in a data loader worker: lcmae_core.data.DataError: corrupt or unreadable image "
                                 "/d/val/x.JPEG: OSError: truncated")
    assert errors.first_line(ValueError()) == "ValueError" and errors.first_line(ValueError("\n a \n b")) == "a"


def test_the_results_page_on_an_empty_store_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no page has recorded results at scale 'cpu'"):
        results.require_results(results.load_all("cpu", tmp_path), "cpu", tmp_path)


def test_the_explorer_checks_its_parameters_first():
    parameters.check_page("explorer", {"n_images": 8, "mask_ratio": 0.75})
    for n, r in ((0, 0.75), ("8", 0.75), (8, "abc"), (8, 1.0), (8, True), (2.5, 0.75)):
        with pytest.raises(parameters.ParameterError, match="n_images|mask_ratio"):
            parameters.check_page("explorer", {"n_images": n, "mask_ratio": r})
    assert parameters.parse_value("abc") == "abc"


# ---------------------------------------------------------------------------------------------------------------
# the matrix: every entry point against every kind of fault
def _entry(name):
    from lcmae_core.perf import bench

    return {"cli": main, "batch": batch.main, "book": build.main, "bench": bench.main}[name]


def _write(path, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


MATRIX = [
    # (entry, fault, argv, exit status, words in the line); {t} is a scratch folder, {t}/file a regular file
    ("cli", "wrong type", ["finetune", *SMOKE, "--family", "none", "--set", "optim.epochs=abc"], 2, "takes an integer"),
    ("cli", "wrong type", ["linprobe", *SMOKE, "--family", "none", "--set", "optim.batch_size=x"], 2,
     "takes an integer"),
    ("cli", "wrong type", ["plan", "--jobs", "abc"], 2, "invalid int value: 'abc'"),
    ("batch", "wrong type", ["--jobs", "abc"], 2, "invalid int value: 'abc'"),
    ("book", "wrong type", ["--jobs", "abc"], 2, "invalid int value: 'abc'"),
    ("bench", "wrong type", ["--steps", "abc"], 2, "invalid int value: 'abc'"),
    ("cli", "out of range", ["finetune", *SMOKE, "--family", "none", "--set", "optim.lr=-1"], 2,
     "optim.lr must be a finite number"),
    ("cli", "out of range", ["linprobe", *SMOKE, "--family", "none", "--set", "optim.base_lr=inf"], 2,
     "optim.base_lr must be a finite number"),
    ("cli", "out of range", ["plan", "--scale", "huge"], 2, "invalid choice: 'huge'"),
    ("batch", "out of range", ["--jobs", "0"], 2, "--jobs must be at least 1"),
    ("book", "out of range", ["--scale", "huge"], 2, "invalid choice: 'huge'"),
    ("bench", "out of range", ["--device", "cpu", "--workloads", "tiny", "--steps", "0"], 2,
     "--steps must be positive"),
    ("cli", "missing path", ["finetune", *SMOKE, "--dataset", "imagefolder", "--data-root", "{t}/none"], 2,
     "does not exist"),
    ("batch", "missing path", ["--scale", "paper", "--only", "explorer", "--checkpoints", "{t}/none"], 2,
     "does not exist"),
    ("bench", "missing path", ["--device", "cpu", "--workloads", "loader", "--data-root", "{t}/none"], 2,
     "does not exist"),
    ("cli", "under a file", ["finetune", *SMOKE, "--family", "none", "--run-root", "{t}/file/runs"], 2,
     "not writable"),
    ("cli", "under a file", ["plan", "--scale", "smoke", "--only", "explorer", "--run-root", "{t}/file/runs"], 2,
     "not writable"),
    ("batch", "under a file", ["--only", "explorer", "--out", "{t}/file/executed"], 2,
     "--out {t}/file/executed cannot be used as a folder"),
    ("batch", "under a file", ["--only", "explorer", "--run-root", "{t}/file/runs"], 2, "not writable"),
    ("book", "under a file", ["--run-root", "{t}/file/runs"], 2, "not writable"),
    ("bench", "under a file", ["--device", "cpu", "--workloads", "tiny", "--out", "{t}/file/x.jsonl"], 2,
     "is a file, not a folder"),
    ("batch", "corrupt file", ["--scale", "paper", "--only", "explorer", "--checkpoints", "{t}/ckpts"], 2,
     "explorer: {t}/ckpts/mae_visualize_vit_base.pth is empty"),
    ("batch", "corrupt file", ["--scale", "paper", "--only", "explorer", "-p", "mae_checkpoint", "{t}/bad.pth"], 2,
     "a zip archive without its directory"),
    ("book", "corrupt file", ["--no-execute"], 1, "not a run-status record"),
]


@pytest.mark.parametrize("entry, fault, argv, code_, words", MATRIX, ids=[f"{m[0]}-{m[1]}-{i}"
                                                                          for i, m in enumerate(MATRIX)])
def test_fault_matrix(tmp_path, capsys, monkeypatch, entry, fault, argv, code_, words):
    t = str(tmp_path)
    (tmp_path / "file").write_text("x")
    _write(f"{t}/bad.pth", b"PK\x03\x04 cut off")
    _write(f"{t}/ckpts/mae_visualize_vit_base.pth", b"")
    monkeypatch.setattr(build, "DEFAULT_OUT", tmp_path / "book-executed")
    (tmp_path / "book-executed").mkdir()
    (tmp_path / "book-executed" / "run_status.json").write_text("[{")
    argv = [a.replace("{t}", t) for a in argv]
    if entry in ("cli", "batch") and (argv[0] in ("batch", "plan") or entry == "batch") and "--run-root" not in argv:
        argv += ["--run-root", f"{t}/runs"]
    if (entry == "batch" or argv[0] == "batch") and "--out" not in argv:
        argv += ["--out", f"{t}/executed"]
    code = _entry(entry)(argv)
    err = capsys.readouterr().err.strip()
    assert code == code_ and one_line(err) and words.replace("{t}", t) in err, (code, err)
    assert not left_behind(f"{t}/runs") and not list(tmp_path.glob("executed/*.ipynb"))


@pytest.mark.parametrize("entry, argv", [("cli", ["pretrain", *SMOKE]), ("cli", ["plan", "--dry-run"]),
                                         ("cli", ["bench", "--list"]), ("batch", ["--only", "explorer"]),
                                         ("book", ["--no-execute"]), ("bench", ["--list"])])
def test_an_interrupt_at_any_entry_point_is_one_line(tmp_path, capsys, monkeypatch, entry, argv):
    import argparse

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", interrupted)
    code = _entry(entry)(argv)
    err = capsys.readouterr().err.strip()
    assert code == 130 and one_line(err) and "interrupted" in err, (code, err)


@pytest.mark.parametrize("module", ["lcmae_core", "lcmae_core.build", "lcmae_core.batch", "lcmae_core.perf.bench"])
def test_a_ctrl_c_while_python_m_imports_is_one_line(tmp_path, module):
    """A real SIGINT a second after ``python -m`` starts, while torch and timm are still importing."""
    import signal
    import subprocess
    import sys
    import time

    args = {"lcmae_core": ["plan", "--dry-run"], "lcmae_core.build": ["--no-execute"],
            "lcmae_core.batch": ["--only", "explorer"],
            # a real workload (``--list`` needs no torch and could end before the signal, which then lands in the
            # interpreter's shutdown, where no exit status can be set)
            "lcmae_core.perf.bench": ["--workloads", "tiny", "--device", "cpu", "--out",
                                      str(tmp_path / "b.jsonl")]}[module]
    # a terminal's Ctrl-C: SIGINT at its default disposition (pytest-xdist workers ignore it, and a child inherits
    # that), then the signal a second after start, while torch and timm are still importing
    p = subprocess.Popen([sys.executable, "-m", module, *args], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    # 130 from our handler, or -2 (death by SIGINT, which CPython chooses when a KeyboardInterrupt ends the
    # interpreter): a shell reports both as $? = 130, and either way the user sees the one line
    assert p.returncode in (130, -signal.SIGINT) and one_line(err.strip()) and "interrupted" in err, \
        (p.returncode, err[-2000:])


def test_quiet_interrupts_holds_the_one_line_handler_only_while_the_commands_import():
    """cli imports its command modules (torch, numpy) under errors.quiet_interrupts: a Ctrl-C there exits at once
    (an interrupted numpy import raised a RecursionError that no except KeyboardInterrupt caught)."""
    import signal

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with errors.quiet_interrupts():
            assert signal.getsignal(signal.SIGINT) is errors._exit_interrupted
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's ignored Ctrl-C stays ignored
        with errors.quiet_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
