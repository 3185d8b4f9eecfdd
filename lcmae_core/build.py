"""Building the book: its browser assets, its runs and notebooks, and the HTML.

``python -m lcmae_core.build [--scale cpu] [--no-execute]`` (what ``make book`` runs):
1. installs MathJax, RequireJS and the Jupyter widget manager from the npm registry into ``.cache/npm`` (once)
   and copies them into ``book/_static/vendor``, so that the built book renders with no network: equations
   are typeset and widgets appear with their frozen state;
2. trains every run the notebooks need, in parallel worker processes (``lcmae_core.plan``, ``--jobs``), then
   executes every notebook at the scale with papermill (``lcmae_core.batch``) into ``book/executed``;
3. builds the HTML book with ``jupyter-book build . -W -n --keep-going``.
A failing notebook or a warning fails the build with a non-zero exit.
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m lcmae_core.build: a Ctrl-C during the imports below is one line too
    from lcmae_core.errors import quiet_interrupts_while_importing

    quiet_interrupts_while_importing()

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .batch import DEFAULT_OUT, REPO, BatchError, failures, list_notebooks, run_batch
from .scales import NAMES as SCALES
from .errors import OneLineParser, UsageError, interruptible
from .plan import check_jobs
from .runs import ROOT_HELP

NPM_PACKAGES = ("mathjax@3.2.2", "@jupyter-widgets/html-manager@1.0.15", "requirejs@2.3.8")
VENDOR = REPO / "book" / "_static" / "vendor"
NPM_CACHE = REPO / ".cache" / "npm"


class BookError(RuntimeError):
    pass


def vendor_assets(vendor: Path = VENDOR, cache: Path = NPM_CACHE) -> Path:
    """Install the browser assets once and copy them into the book's static folder."""
    marker = vendor / ".complete"
    if marker.exists():
        return vendor
    modules = cache / "node_modules"
    if not (modules / "mathjax" / "es5" / "tex-chtml.js").exists():
        if shutil.which("npm") is None:
            raise BookError("npm is needed once to fetch MathJax and the widget manager; install Node.js and npm")
        print("installing MathJax, RequireJS and the widget manager from the npm registry ...", flush=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(cache),
                        *NPM_PACKAGES], check=True)
    tmp = vendor.with_name(vendor.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(modules / "mathjax" / "es5", tmp / "mathjax", ignore=shutil.ignore_patterns("sre", "*.map"))
    shutil.copytree(modules / "@jupyter-widgets" / "html-manager" / "dist", tmp / "widgets",
                    ignore=shutil.ignore_patterns("*.map", "embed.js*", "libembed-amd.js"))
    shutil.copy2(modules / "requirejs" / "require.js", tmp / "require.js")
    shutil.rmtree(vendor, ignore_errors=True)
    os.replace(tmp, vendor)
    marker.touch()
    return vendor


def build_html(root: Path = REPO, builder_args: tuple[str, ...] = ()) -> int:
    """jupyter-book build, failing on any warning or notebook error. It builds beside the book's ``_build`` (a copy,
    so that unchanged pages are not rebuilt) and replaces ``_build`` only when the build succeeds: a failed build
    leaves the last good HTML in place."""
    root = Path(root)
    jb = Path(sys.executable).with_name("jupyter-book")
    final, work = root / "_build", root / ".build.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    if final.is_dir():
        shutil.copytree(final, work / "_build", symlinks=True)
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "-W", "-n", "--keep-going",
           "--path-output", str(work), *builder_args]
    code = subprocess.run(cmd).returncode
    if code == 0:
        old = root / ".build.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(work / "_build", final)
        shutil.rmtree(old, ignore_errors=True)
        # jupyter-book named the folder it built in; the book now stands where the reader looks for it
        print(f"The book is in {final / 'html'} (open {final / 'html' / 'index.html'}).", flush=True)
    else:
        print(f"note: the build failed, so {final} keeps the last good HTML", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return code


def failed_notebooks(out_dir: Path) -> list[str]:
    """The notebooks an executed folder's run_status.json records as failed (none when there is no record)."""
    f = Path(out_dir) / "run_status.json"
    if not f.exists():
        return []
    try:
        return [r["notebook"] for r in json.loads(f.read_text()) if not r.get("ok")]
    except (ValueError, KeyError, TypeError) as e:
        raise BookError(f"{f} is not a run-status record ({type(e).__name__}); rerun the batch to rewrite it") from None


@interruptible
def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m lcmae_core.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="cpu", choices=SCALES, help="the scale to execute the notebooks at")
    p.add_argument("--no-execute", action="store_true",
                   help="render what book/executed holds (e.g. from a batch on a cluster) without running it")
    p.add_argument("--rerun", action="store_true",
                   help="execute every notebook again, even those whose inputs are unchanged since the last build")
    p.add_argument("--run-root", default=None, help=ROOT_HELP)
    p.add_argument("--data-root", default=None, help="dataset root for the gpu and paper scales")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes that train the runs before the notebooks execute (default: the usable "
                        "cores at smoke and cpu scale)")
    p.add_argument("--publish-failures", action="store_true",
                   help="with --no-execute: build even when book/executed/run_status.json records a failed notebook")
    try:
        args = p.parse_args(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.jobs = check_jobs(args.jobs)
    if args.no_execute and not args.publish_failures:
        try:
            failed = failed_notebooks(DEFAULT_OUT)
        except BookError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if failed:
            print(f"error: {DEFAULT_OUT / 'run_status.json'} records failed notebook(s): {', '.join(failed)}; rerun "
                  "them (python -m lcmae_core batch --only ...), or pass --publish-failures to publish them as they "
                  "are",
                  file=sys.stderr)
            return 1
    try:
        vendor_assets()
    except (BookError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not args.no_execute and list_notebooks():
        try:
            records = run_batch(args.scale, DEFAULT_OUT, data_root=args.data_root, run_root=args.run_root,
                                reuse=not args.rerun, jobs=args.jobs)
        except BatchError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not all(r["ok"] for r in records):
            print(f"error: notebook(s) failed: {failures(records)}; the executed copies in {DEFAULT_OUT} show the "
                  "cell", file=sys.stderr)
            return 1
    return build_html()


if __name__ == "__main__":
    sys.exit(main())
