"""Where the benchmark's results go: ``bench/results``, the names of its JSON-lines and profile files, and the
atomic append of JSON lines."""

from __future__ import annotations

import datetime
import json
import os
import re

import torch

from ..atomic import atomic_open
from .workloads import device_name


def slug(text: str) -> str:
    """``text`` lower-cased, each run of other characters than [a-z0-9.] a '-', at most 60 characters."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:60]


def device_slug(device: torch.device) -> str:
    """'cpu', or the GPU's name as a ``slug``: the device part of a results file's name."""
    return "cpu" if device.type == "cpu" else slug(device_name(device))


def results_dir() -> str:
    """``bench/results`` of this repository (beside the ``lcmae_core`` package), else under the working dir."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    base = repo if os.path.isdir(os.path.join(repo, "bench")) else os.getcwd()
    return os.path.join(base, "bench", "results")


def file_in_path(folder: str) -> str | None:
    """The first component of ``folder`` that exists as something other than a folder, or None."""
    path = os.path.abspath(folder)
    while path and path != os.path.dirname(path):
        if os.path.exists(path) and not os.path.isdir(path):
            return path
        path = os.path.dirname(path)
    return None


def results_path(device: torch.device, date: str | None = None) -> str:
    """``bench/results/<device>_torch<version>_<date>.jsonl``: the default results file."""
    date = date or datetime.date.today().isoformat()
    return os.path.join(results_dir(), f"{device_slug(device)}_torch{slug(torch.__version__)}_{date}.jsonl")


def profile_path(device: torch.device, workload: str, mode: str, folder: str | None = None,
                 date: str | None = None) -> str:
    """``<folder>/profile_<workload>_<mode>_<device>_<date>.json`` (folder: ``bench/results`` by default)."""
    date = date or datetime.date.today().isoformat()
    return os.path.join(folder or results_dir(), f"profile_{workload}_{mode}_{device_slug(device)}_{date}.json")


def write_jsonl(path: str, records: list[dict]) -> None:
    """Append records as JSON lines atomically: the old content plus the new lines go to a temporary file in
    the same folder, which then replaces the file (a reader never sees half a line)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    old = b""
    if os.path.exists(path):
        with open(path, "rb") as f:
            old = f.read()
        if old and not old.endswith(b"\n"):
            old += b"\n"
    new = "".join(json.dumps(r, sort_keys=False) + "\n" for r in records).encode()
    with atomic_open(path, "wb") as f:
        f.write(old + new)
