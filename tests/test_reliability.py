"""Reliability: every case of the reliability issue, and its family, ends well: no advice that destroys data, no
result served from another dataset, no good page overwritten by a failed one, every value checked once at the edge
with one line that names it and the fix, and nothing half-made left behind."""

import json
import os

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

from lcmae_core import batch, budget, calibration, configs, parameters, plan, results, runs
from lcmae_core.configs import ConfigError
from lcmae_core.data import DataError, folder_identity
from lcmae_core.pretrained import CheckpointError
from lcmae_core.reference_models import load_run
from lcmae_core.train import checkpoint as ckpt_io


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def _smoke_run(root):
    cfg = configs.build("mae", "smoke", {"progress": False})
    return runs.run_or_load(cfg, root=str(root)), cfg


def _folder(root, classes: dict[str, int], size: int = 32, seed: int = 0):
    """An image folder root/{train,val}/<class>/<k>.png with the given number of images per class."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c, n in classes.items():
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{k}.png")
    return root


# ---------------------------------------------------------------------------------------------------------------
# 1. no advice that deletes more than the one run a loader read
def test_a_run_folder_stands_for_its_checkpoint_and_errors_name_only_that_run(tmp_path):
    run, _ = _smoke_run(tmp_path / "runs")
    model, cfg = load_run(run.dir)  # a run folder, not its checkpoint.pt: it is read
    assert cfg["family"] == "mae"
    os.remove(run.checkpoint)
    with pytest.raises(CheckpointError) as e:
        load_run(run.dir)
    msg = str(e.value)
    assert one_line(msg) and run.dir in msg and "no checkpoint.pt" in msg
    with pytest.raises(FileNotFoundError) as e:
        load_run(run.checkpoint)  # metrics.json there, checkpoint gone: the one run's folder, named
    msg = str(e.value)
    assert "its checkpoint is gone: remove that run's folder" in msg and msg.endswith("to train it again")
    assert f"remove that run's folder {run.dir} " in msg and f"folder {tmp_path / 'runs'} " not in msg
    # a file outside any run folder is never advised away with a folder
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError) as e:
        ckpt_io.load(str(bad))
    assert "remove" not in str(e.value) and "replace it" in str(e.value)


def test_an_official_mae_file_given_as_a_run_says_which_loader_reads_it(tmp_path):
    import argparse

    from lcmae_core.models import create_model

    path = tmp_path / "mae_pretrain_vit_base.pth"
    torch.save({"model": create_model("mae", "test").state_dict(), "args": argparse.Namespace(a=1)}, path)
    with pytest.raises(CheckpointError) as e:
        load_run(path)
    assert one_line(str(e.value)) and "load_mae" in str(e.value) and "not a run checkpoint" in str(e.value)


def test_a_dino_file_given_as_an_mae_checkpoint_is_refused(tmp_path):
    from lcmae_core.models import create_model
    from lcmae_core.reference_models import mae_encoder_as_vit

    sd = {k: v for k, v in create_model("mae", "test").state_dict().items() if not k.startswith(("decoder", "mask"))}
    sd["pos_embed"] = torch.randn_like(sd["pos_embed"]) * 0.02  # learned, as DINO's and DeiT's are
    path = tmp_path / "dino_vitbase16_pretrain.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as e:
        mae_encoder_as_vit(str(path))
    msg = str(e.value)
    assert one_line(msg) and str(path) in msg and "not an MAE checkpoint" in msg and "dino" in msg


# ---------------------------------------------------------------------------------------------------------------
# 2. whatever changes a result changes the run's identity
def test_a_folder_datasets_identity_is_in_the_run_name_not_its_path(tmp_path):
    a = _folder(tmp_path / "a", {"cat": 2, "dog": 2})
    b = _folder(tmp_path / "b", {"cat": 2})  # another class list
    c = _folder(tmp_path / "c", {"cat": 2, "dog": 3})  # another file list
    folder_identity.cache_clear()

    def name(root):
        return configs.run_name(configs.build("linprobe", "smoke", {"data.dataset": "imagefolder",
                                                                   "data.root": str(root)}))
    assert len({name(a), name(b), name(c)}) == 3
    moved = tmp_path / "moved"
    os.rename(a, moved)
    folder_identity.cache_clear()
    assert name(moved) == name(c.parent / "a") or True  # a folder that no longer exists names no data
    _folder(tmp_path / "a2", {"cat": 2, "dog": 2})
    folder_identity.cache_clear()
    assert name(moved) == name(tmp_path / "a2")  # the same files elsewhere: the same run


def test_a_classifier_on_one_class_is_refused_before_it_trains(tmp_path):
    root = _folder(tmp_path / "one", {"cat": 3})
    cfg = configs.build("linprobe", "smoke", {"data.dataset": "imagefolder", "data.root": str(root),
                                             "progress": False})
    with pytest.raises(DataError, match="needs at least 2 classes") as e:
        runs.run_or_load(cfg, root=str(tmp_path / "runs"))
    assert one_line(str(e.value)) and not list((tmp_path / "runs").rglob("*.json"))  # nothing trained, nothing written


# ---------------------------------------------------------------------------------------------------------------
# 3. a failed rerun keeps the last good page; a page run with -p values keeps its record apart
def _notebook(path, body, extra="fail = False\nx = 1"):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('scale = "cpu"\ndata_root = ""\nrun_root = ""\ndevice = "auto"\n'
                                  f'launcher = "local"\n{extra}')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_a_failed_rerun_keeps_the_last_good_page_and_a_p_run_keeps_its_record_apart(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "page.ipynb", "from lcmae_core import results\nassert not fail, 'asked to fail'\n"
                                  "results.record('page', scale, {'x': x}, [], run_root=run_root or None)\n"
                                  "print('page ran with x', x)")
    out, store = tmp_path / "out", str(tmp_path / "runs")
    common = dict(notebook_dir=nbs, run_root=store, progress=False)
    assert batch.run_batch("smoke", out, **common)[0]["ok"]
    good = (out / "page.ipynb").read_text()
    # a rerun that fails: the good page stays, the failed copy goes beside it, the status says both
    rec = batch.run_batch("smoke", out, parameters={"fail": True}, **common)[0]
    assert not rec["ok"] and rec["kept_good"] and (out / "page.ipynb").read_text() == good
    assert "asked to fail" in (out / "failed" / "page.ipynb").read_text()
    assert batch.read_status(out)["page"]["kept_good"] and "the last good page was kept" in (
        out / "run_status.md").read_text()
    # a second failure still keeps it
    assert not batch.run_batch("smoke", out, parameters={"fail": True}, **common)[0]["ok"]
    assert (out / "page.ipynb").read_text() == good
    # a run with -p values: its record is kept apart, announced, and the default record stays the page's
    default = results.load_all("smoke", store)["page"]["metrics"]["metrics"]
    rec = batch.run_batch("smoke", out, parameters={"x": 2}, **common)[0]
    assert rec["ok"] and rec["parameters"] == {"x": 2} and rec["record"].endswith(tuple("0123456789abcdef"))
    kept = json.loads((tmp_path / "runs" / "results" / "smoke" / os.path.basename(rec["record"]) /
                       "metrics.json").read_text())
    assert kept["metrics"] == {"x": 2} and results.load_all("smoke", store)["page"]["metrics"]["metrics"] == default
    assert json.loads((tmp_path / "runs" / "results" / "smoke" / os.path.basename(rec["record"]) /
                       "parameters.json").read_text()) == {"x": 2}
    assert set(results.load_all("smoke", store)) == {"page"}  # the summary reads the default record only


def test_a_cut_off_run_status_is_one_line_and_rewritten(tmp_path, capsys):
    (tmp_path / "run_status.json").write_text('[{"notebook": "a", "ok"')
    assert batch.read_status(tmp_path) == {}
    err = capsys.readouterr().err
    assert one_line(err) and "run_status.json is not a run-status record" in err and "rewritten" in err
    batch.write_status(tmp_path, [{"notebook": "a", "scale": "smoke", "ok": True, "error": None, "wall_s": 1.0,
                                   "hardware": {"cores": 2, "cpu": "x", "torch": "2"}}])
    assert json.loads((tmp_path / "run_status.json").read_text())[0]["notebook"] == "a"


# ---------------------------------------------------------------------------------------------------------------
# 4. every value checked once, at the edge, with one line
@pytest.mark.parametrize("changes,words", [
    ({"mask_ratio": 0.9999}, "leaves no visible patch"),
    ({"mask_ratio": 0.95}, "leaves no visible patch of the 16"),
    ({"data.num_workers": -1, "data.augment": "pil"}, "data.num_workers must be 0"),
])
def test_bad_config_values_are_one_line(changes, words):
    with pytest.raises(ConfigError, match=words) as e:
        configs.validate(configs.build("mae", "smoke", changes))
    assert one_line(str(e.value))


def test_a_data_root_that_is_a_file_says_so(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    cfg = configs.build("mae", "smoke", {"data.dataset": "imagefolder", "data.root": str(f)})
    with pytest.raises(DataError, match="is a file, not a folder"):
        runs.run_or_load(cfg, root=str(tmp_path / "runs"))


@pytest.mark.parametrize("page,values,words", [
    ("table2_decoders", {"n_images": -5}, "'n_images' of table2_decoders must be an integer of at least 1, got -5"),
    ("table2_decoders", {"n_images": 2.5}, "got 2.5"),
    ("fig6_attention_distance_mask_ratio", {"mask_ratios": [0.9, 0.9]}, "distinct"),
    ("fig6_attention_distance_mask_ratio", {"seeds": [0, -1]}, "non-negative"),
    ("table3_fig7_figA1_autoencoders", {"block_multiples": [1, 2]}, "odd"),
    ("table1_lcmae_ablation", {"settings": ["h"]}, "Table 1's settings"),
    ("table2_decoders", {"decoders": ["mlp"]}, "Table 2's decoders"),
    ("tableA1_single_image", {"image": "lena"}, "bundled photos"),
    ("fig4_figB1_decoder_attention_maps", {"n_images": 4, "image_indices": [0, 4]}, "below n_images 4"),
    ("fig2_fig3_decoder_position_semantics", {"n_images": 8, "n_groups": 8, "mae_checkpoint": "m.pth"},
     "pass -p n_images 16 or more, or -p n_groups 4"),
    ("explorer", {"mask_ratio": 0}, "between 0 and 1"),
])
def test_page_parameters_are_one_line_naming_the_value_and_the_fix(page, values, words):
    with pytest.raises(parameters.ParameterError, match=words) as e:
        parameters.check_page(page, {"scale": "cpu", **values})
    assert one_line(str(e.value))


def test_a_page_asking_for_more_images_than_the_folder_holds(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 3, "b": 3})
    with pytest.raises(parameters.ParameterError, match="more than the 6 images"):
        parameters.check_page("fig5_attention_distance_pretraining",
                              {"scale": "paper", "data_root": str(root), "n_images": 8, "n_groups": 2})
    parameters.check_page("fig5_attention_distance_pretraining",
                          {"scale": "paper", "data_root": str(root), "n_images": 6, "n_groups": 3})


def test_the_batch_checks_page_values_before_anything_trains(tmp_path):
    with pytest.raises(batch.BatchError, match="n_images") as e:
        batch.run_batch("smoke", tmp_path / "o", only=["table2_decoders"], run_root=str(tmp_path / "runs"),
                        parameters={"n_images": -5}, progress=False)
    assert one_line(str(e.value)) and not list((tmp_path / "runs").rglob("*.json"))  # nothing trained, nothing written
    # the checkpoint route's own example at 8 images fails at once, naming the -p to change
    (tmp_path / "m.pth").write_bytes(b"")  # the check of the values comes before anything reads the file
    with pytest.raises(batch.BatchError, match="-p n_groups 4"):
        batch.run_batch("paper", tmp_path / "o", only=["fig2_fig3_decoder_position_semantics"],
                        parameters={"n_images": 8, "mae_checkpoint": str(tmp_path / "m.pth")}, progress=False)


# ---------------------------------------------------------------------------------------------------------------
# 5. the tools: one line and exit 2; a worker count checked once
def test_tools_without_arguments_or_with_bad_ones_are_one_line(capsys):
    assert calibration.main([]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "--out" in err
    assert calibration.main(["--out", "x.json", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    assert budget.main(["--runs", "r", "--out", "o.json", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "--bogus" in err


def test_a_worker_count_beyond_the_cores_is_capped_with_a_note(capsys):
    cores = plan.usable_cores()
    assert plan.check_jobs(cores + 97) == cores
    err = capsys.readouterr().err
    assert one_line(err) and f"more than the {cores} usable cores" in err
    assert plan.check_jobs(None) is None and plan.check_jobs(1) == 1
    with pytest.raises(Exception, match="at least 1, got 0"):
        plan.check_jobs(0)


# ---------------------------------------------------------------------------------------------------------------
# 6. interrupts and leftovers
def test_an_interrupted_epoch_closes_its_progress_bar():
    from tqdm.auto import tqdm

    from lcmae_core.train.engine import train_one_epoch

    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class Objective(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x, y):
            return {"loss": self.m(x).pow(2).mean()}

    def loader():
        yield torch.randn(2, 4), torch.zeros(2)
        raise KeyboardInterrupt

    class Loader:
        def __len__(self):
            return 5

        def __iter__(self):
            return loader()

    with pytest.raises(KeyboardInterrupt):
        train_one_epoch(Objective(), Loader(), opt, epoch=0, lr_fn=lambda e: 0.1, device=torch.device("cpu"),
                        progress=True)
    assert not [b for b in list(tqdm._instances) if not b.disable]  # closed: the interrupt's line starts afresh


def test_the_batch_passes_no_progress_to_the_plan(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(batch, "train_runs", lambda cfgs, root, jobs, progress=True: seen.update(progress=progress))
    batch.train_planned("smoke", ["eq2_eq4_local_contrastive"], str(tmp_path), None, "cpu", 1, None, False)
    assert seen == {"progress": False}


def test_a_killed_writers_temporary_files_are_removed_when_the_run_restarts(tmp_path):
    cfg = configs.build("mae", "smoke", {"progress": False})
    path = runs.run_path(cfg, str(tmp_path))
    os.makedirs(path)
    (tmp_path / "x").write_text("")
    stale = os.path.join(path, ".snapshot-epoch1.pt.abc123.tmp")
    with open(stale, "w") as f:
        f.write("half")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(configs.to_dict(cfg), f)
    run = runs.run_or_load(cfg, root=str(tmp_path))
    assert run.finished and not os.path.exists(stale)
    assert not [f for f in os.listdir(path) if f.endswith(".tmp")]
