"""The publishing files: the two GitHub workflows (test on every push, build and deploy the book to GitHub Pages
on main) and CITATION.cff are valid against their published schemas, checked offline by check-jsonschema's
vendored copies, and say what they must."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"


def _check(schema: str, *files: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    if exe is None:
        pytest.fail("check-jsonschema is needed (it is in requirements.txt)")
    return subprocess.run([exe, "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True,
                          timeout=120)


def test_workflows_are_valid_github_workflows():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["book.yml", "test.yml"]
    res = _check("vendor.github-workflows", *files)
    assert res.returncode == 0, res.stdout + res.stderr
    res = _check("custom.github-workflows-require-timeout", *files)  # no job may run unbounded
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: not-a-list\n")
    assert _check("vendor.github-workflows", bad).returncode != 0


def test_the_test_workflow_runs_ci_and_the_book_workflow_deploys_the_html():
    test = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    steps = test["jobs"]["test"]["steps"]
    assert any(s.get("run") == "bash .ci/run" for s in steps)
    book = yaml.safe_load((WORKFLOWS / "book.yml").read_text())
    build = book["jobs"]["build"]["steps"]
    assert any(s.get("run") == "make book" for s in build)
    upload = [s for s in build if str(s.get("uses", "")).startswith("actions/upload-pages-artifact")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert book["permissions"]["pages"] == "write" and book["permissions"]["id-token"] == "write"
    deploy = book["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages")
    # True is YAML 1.1's reading of the key "on"
    assert (book.get("on") or book.get(True))["push"]["branches"] == ["main"]


def test_citation_file_is_valid_and_cites_the_paper():
    res = _check("vendor.citation-file-format", REPO / "CITATION.cff")
    assert res.returncode == 0, res.stdout + res.stderr
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    paper = cff["preferred-citation"]
    assert paper["title"] == "Understanding Masked Autoencoders From a Local Contrastive Perspective"
    assert [a["family-names"] for a in paper["authors"]][:2] == ["Yue", "Bai"]
    assert "2310.01994" in paper["url"]
