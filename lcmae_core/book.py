"""The helpers every notebook of the book shares: the scale note and the rerun commands at the top of a page
(``start``), titled tables, and the glue that puts measured numbers into the prose (``glue_metrics``). Building the
book is ``lcmae_core.build``."""

from __future__ import annotations

import html

from . import scales, stats
from .parameters import NOTEBOOK_DIR, declared_parameters
from .configs import scale_record


CHECKPOINT_ROUTE = ("on released checkpoints, with no training: it needs the checkpoint files and a CPU "
                    "(measured with bench/checkpoint_route.py on 2 cores for 256 images: from 20 s for the explorer "
                    "to 10 minutes for Figs. 2 and 3 a page, about 23 minutes for the four)")


def start(scale: str, needs: str | None = None, page: str | None = None):
    """The first call of every notebook: render figures inline as PNG (no pyplot needed), and show the admonition
    that says what hardware the page's scale needs (``needs``: what this page actually needed, when that is less,
    e.g. released checkpoints analysed on a CPU), followed, for a ``page``, by how to rerun it at the larger scales
    (``rerun_box``). It displays them itself, so they appear whether or not the call ends its cell. Tables show every
    cell whole: pandas would cut a cell at 50 characters, and a trend over epochs would lose its end."""
    import pandas as pd  # lazy: the book's tables only

    pd.set_option("display.max_colwidth", None)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats  # lazy: optional (IPython kernels)

        set_matplotlib_formats("png")  # registers the PNG formatter for matplotlib Figures in this kernel
    except (ImportError, AttributeError):  # outside IPython: nothing to register
        pass
    from IPython.display import HTML, display  # lazy: optional (IPython: notebooks only)

    note = scale_admonition(scale, needs)
    display(HTML(note.data + (rerun_box(page) if page else "")))  # shown wherever the call sits in its cell


def rerun_commands(page: str) -> dict[str, list[str]]:
    """{scale: [the batch command, the papermill command]} that run one page at the gpu and paper scales (DIR:
    the dataset root). Pages that can train (their ``train`` parameter) take --train / train=True."""
    trains = "train" in declared_parameters(NOTEBOOK_DIR / f"{page}.ipynb")
    out = {}
    for scale in (name for name, rec in scales.SCALES.items() if rec.ask_before_training):
        slurm = " --launcher slurm --partition P --nodes 8 --gpus-per-node 8" if scales.get(scale).cluster else ""
        train = " --train" if trains else ""
        batch = f"python -m lcmae_core batch --scale {scale} --data-root DIR{train}{slurm} --only {page}"
        pm_train = " -p train True" if trains else ""
        pm_slurm = " -p launcher slurm" if scales.get(scale).cluster else ""
        papermill = (f"papermill notebooks/{page}.ipynb {page}-{scale}.ipynb -p scale {scale} -p data_root DIR"
                     f"{pm_train}{pm_slurm}")
        out[scale] = [batch, papermill]
    return out


def rerun_box(page: str) -> str:
    """HTML: a folded tip (Sphinx admonition classes) with the exact commands that rerun this page at the gpu and
    paper scales, and what each needs."""
    rows = []
    for scale, cmds in rerun_commands(page).items():
        code = "".join(f"<pre><code>{html.escape(c)}</code></pre>" for c in cmds)
        rows.append(f"<p>At the <strong>{scale}</strong> scale ({html.escape(scale_record(scale).hardware)}), from the "
                    f"repository root, with the batch runner or papermill:</p>{code}")
    return ('<div class="tip admonition"><p class="admonition-title">Rerun this page at a larger scale</p>'
            f"<details><summary>the commands</summary>{''.join(rows)}</details></div>")


def scale_admonition(scale: str, needs: str | None = None):
    """A note, shown at the top of a page, saying what hardware its scale needs (or ``needs``). HTML with the
    classes of a Sphinx admonition: the book's theme draws it as one, and JupyterLab shows it as text (a MyST
    ``:::{admonition}`` would print there as raw markup)."""
    from IPython.display import HTML  # lazy: optional (IPython: notebooks only)

    rec = scale_record(scale)
    kind = "important" if rec.ask_before_training and not needs else "note"
    what = html.escape(needs or f"which needs {rec.hardware}")
    return HTML(f'<div class="{kind} admonition"><p class="admonition-title">Scale: {scale}</p>'
                f"<p>This page ran at the <strong>{scale}</strong> scale, {what}.</p></div>")


def titled(table, title: str, floatfmt: str = ".1f"):
    """A pandas table as a titled Markdown table (renders in the book and reads well as text)."""
    from IPython.display import Markdown  # lazy: optional (IPython: notebooks only)

    return Markdown(f"**{title}**\n\n" + table.to_markdown(floatfmt=floatfmt) + "\n")


def glue_metrics(prefix: str, metrics: dict, display: bool = False) -> None:
    """Glue every scalar of a (nested) metrics dict as ``prefix.key.subkey`` for use in the prose."""
    from myst_nb import glue  # lazy: optional (myst_nb: the book build only)

    for key, value in _flatten(metrics, prefix).items():
        if isinstance(value, (int, float, str, bool)):
            glue(key, stats.prose_number(value) if isinstance(value, float) else value, display=display)


def _flatten(d: dict, prefix: str) -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out
