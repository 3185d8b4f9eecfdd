"""The package's structure: no module imports one that imports it back, through top-level or function-level
imports alike (a function-level import is kept only for an optional or heavy dependency, never to hide a cycle),
and every function-level import says why it is one (a ``# lazy:`` comment)."""

import ast
import io
import os
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lcmae_core"


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports}, from every relative import in the source, at any depth."""
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for cand in [target] + [f"{target}.{a.name}" for a in node.names]:
                    if cand in mods and cand != m:
                        graph[m].add(cand)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path + [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "lcmae_core.claims" in graph and "lcmae_core.stats" in graph["lcmae_core.claims"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


# -------------------------------------------------------------------------------------------------------
# layers: a module imports only its own layer or those below (README, "Layout"); within the top layer, anything
# without a cycle. The root package (``lcmae_core/__init__.py``) holds no code and imports nothing.
LAYERS = (
    ("foundations", ("errors", "atomic", "stats", "masking", "pos_embed", "losses", "models", "paper")),
    ("data", ("photos", "data", "gpu_data")),
    ("configs", ("scales", "configs")),
    ("train", ("train", "pretrained")),
    ("runs", ("runs", "launch", "reference_models")),
    ("analysis", ("analysis", "verdicts", "claims")),
    ("book", ("experiments", "pages", "plan", "parameters", "batch", "build", "book", "results", "records",
              "record_files", "calibration", "testability", "projection", "budget", "perf", "cli", "__main__")),
)


def top_package(module: str) -> str:
    """lcmae_core.train.engine -> train; lcmae_core.data -> data; lcmae_core -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int:
    top = top_package(module)
    for i, (_, members) in enumerate(LAYERS):
        if top in members:
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS: place it")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """"a -> b (layer x imports layer y)" for every import of a higher layer's module."""
    bad = []
    for m, targets in graph.items():
        if not top_package(m):
            continue
        for t in targets:
            if top_package(t) and layer_of(t) > layer_of(m):
                bad.append(f"{m} -> {t} ({LAYERS[layer_of(m)][0]} imports {LAYERS[layer_of(t)][0]})")
    return sorted(bad)


def test_the_packages_form_layers():
    graph = import_graph()
    assert upward_imports(graph) == []
    # every module has a layer, and the root package imports nothing of its own
    assert all(layer_of(m) >= 0 for m in graph if top_package(m))
    assert graph["lcmae_core"] == set()


MAX_MODULE_LINES = 600  # a module past this holds two concerns: split it by concern, as claims/verdicts and configs


def test_no_module_is_over_600_lines():
    long = {str(f.relative_to(PACKAGE)): n for f in sorted(PACKAGE.rglob("*.py"))
            if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split by concern: {long}"


def test_the_layer_check_finds_an_upward_import():
    assert upward_imports({"lcmae_core.train.engine": {"lcmae_core.analysis.monitors"},
                           "lcmae_core.analysis.controls": {"lcmae_core.train.engine"}}) == [
        "lcmae_core.train.engine -> lcmae_core.analysis.monitors (train imports analysis)"]


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


# -------------------------------------------------------------------------------------------------------
# function-level imports: only for an optional dependency or a heavy one a light entry point must not load, each
# with a "# lazy:" comment that says which
LAZY = re.compile(r"#\s*lazy:")


def unexplained_function_imports(source: str, filename: str = "<string>") -> list[str]:
    """"file:line: statement" for every import inside a function (at any depth) without a ``# lazy:`` comment: on
    one of the statement's own lines, on the line directly above it (a comment line, or an import that carries one),
    or above the first of the consecutive import lines it belongs to (one comment may explain a group)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    starts = {}  # last line of every import statement -> its first line
    nested = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                starts[child.end_lineno] = child.lineno
                if in_function:
                    nested.append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)

    def lazy(line):
        return bool(LAZY.match(comments.get(line, "")))

    def explained(node):
        first, line = node.lineno, node.end_lineno
        while True:
            if any(lazy(n) for n in range(first, line + 1)):
                return True
            line = first - 1  # up through the comment lines and the import statements right above
            if line >= 1 and lines[line - 1].lstrip().startswith("#"):
                first = line
            elif line in starts:
                first = starts[line]
            else:
                return False

    return [f"{filename}:{n.lineno}: {lines[n.lineno - 1].strip()}" for n in nested if not explained(n)]


def test_every_function_level_import_says_why_it_is_lazy():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += unexplained_function_imports(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    assert not found, ("function-level imports without a '# lazy: <why>' comment; move them to the top of the "
                       "module, or say why they must stay lazy:\n" + "\n".join(found))


def test_the_lazy_import_check_flags_an_unexplained_one():
    source = (
        "import json\n"                              # 1: top level: fine
        "def f():\n"
        "    import os\n"                            # 3: no comment: flagged
        "    # lazy: optional (pip install x)\n"
        "    import x\n"                             # 5: comment above
        "    import y  # lazy: heavy\n"              # 6: trailing comment
        "    # lazy: heavy, both of them\n"
        "    import a\n"
        "    from b import (c,\n"
        "                   d)\n"                    # 8-10: a group under one comment
        "    return x\n"
        "def g():\n"
        "    # not lazy: just a comment\n"
        "    import z\n"                             # 14: a comment, but not a lazy one: flagged
        "    s = '# lazy: inside a string'; import w\n"  # 15: the text is no comment: flagged
        "    def h():\n"
        "        import v  # lazy: nested functions count too\n"
        "        import u\n"                         # 18: in the group of the commented import above it
        "class C:\n"
        "    def m(self):\n"
        "        import t\n"                         # 21: a method: flagged
        "if __name__ == '__main__':\n"
        "    import sys\n"                           # 23: module level: fine
    )
    assert [r.split(":")[1] for r in unexplained_function_imports(source, "m.py")] == ["3", "14", "15", "21"]
    assert unexplained_function_imports(source, "m.py")[0] == "m.py:3: import os"


def test_training_and_planning_do_not_load_matplotlib():
    """The training workers and the planner never draw: importing them must not pay for matplotlib, which
    ``analysis`` loads only when a figure function is first used."""
    import subprocess
    import sys

    code = ("import sys, lcmae_core.train.pretrain, lcmae_core.train.engine, lcmae_core.plan; "
            "print('matplotlib' in sys.modules); "
            "from lcmae_core import analysis; analysis.attention_distance_figure; print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"], out


def test_each_xdist_worker_runs_on_its_share_of_the_cores():
    """make test's workers (pytest -n auto) split the cores between them: torch's threads and the variable that every
    process a test starts inherits (tests/conftest.py)."""
    import torch

    import conftest

    share = conftest.cores_per_worker()
    if share is None:
        pytest.skip("not under pytest-xdist")
    threads = int(conftest.THREADS_GIVEN or share)  # one the caller set is kept
    assert os.environ["OMP_NUM_THREADS"] == str(threads) and torch.get_num_threads() == threads
