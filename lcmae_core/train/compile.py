"""``torch.compile`` and CUDA graphs for the trainer (``train.trainer``) and the benchmark (``perf.bench``):
compile in place with a fallback to eager.

``maybe_compile`` compiles an ``nn.Module`` in place (its state dict unchanged) or a function, and falls back
to eager with one warning when compiling fails, at once or at the first call (where compile errors surface: the
first call lowers the backward too, ``_first_call``). ``resolve_compile`` reads a config's ``compile`` field (None: on
for CUDA, off on CPU) and ``cuda_graphs``.

One process may compile many objectives in turn (a worker of ``plan.worker_pool`` trains run after run): they share
one code object, ``nn.Module._call_impl``, and each model structure is a cache entry of it. Dynamo stops compiling a
code object after ``recompile_limit`` entries (8 by default) and runs every later structure eagerly, with a log line
only; ``maybe_compile`` raises that limit to ``RECOMPILE_LIMIT``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import torch
import torch.nn as nn

# the torch.compile backend ``compile_objective`` uses (None: torch's default, inductor); tests set "aot_eager"
BACKEND: str | None = None
# the cache entries dynamo keeps per code object (the model structures, mask ratios and modes one process compiles):
# the record's workers train tens of runs each, of a dozen structures (decoders, autoencoders, SimCLR, probes)
RECOMPILE_LIMIT = 64


def _raise_recompile_limit() -> None:
    """At least ``RECOMPILE_LIMIT`` cache entries per code object (a larger value set elsewhere is kept)."""
    import torch._dynamo.config  # lazy: where something is compiled

    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"  # the older name
    setattr(cfg, name, max(getattr(cfg, name), RECOMPILE_LIMIT))


def _first_call():
    """The context of a compiled function's first call: AOTAutograd lowers the backward then, with the forward,
    instead of at the first ``backward()``, so that a backward the compiler cannot build falls back to eager here
    too rather than failing the step (a torch without the flag keeps lowering it lazily)."""
    import torch._functorch.config  # lazy: where something is compiled

    cfg = torch._functorch.config
    if hasattr(cfg, "force_non_lazy_backward_lowering"):
        return cfg.patch(force_non_lazy_backward_lowering=True)
    return contextlib.nullcontext()


def maybe_compile(obj, enabled: bool = True, *, mode: str | None = None, **compile_kwargs):
    """``torch.compile`` an ``nn.Module`` (in place, its state dict unchanged) or a function, falling back to
    eager with one warning if compiling fails, at once or at the first call (where compile errors surface).

    Returns the module (compiled in place) or a wrapped function; ``enabled=False`` returns ``obj`` untouched.
    """
    if not enabled:
        return obj
    _raise_recompile_limit()
    is_module = isinstance(obj, nn.Module)
    eager = obj._call_impl if is_module else obj
    try:
        compiled = torch.compile(eager, mode=mode, **compile_kwargs)
    except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
        _compile_failed(e)
        return obj
    state = {"ok": None}

    @functools.wraps(eager)
    def call(*args, **kwargs):
        if state["ok"] is False:
            return eager(*args, **kwargs)
        if state["ok"] is None:
            try:
                with _first_call():
                    out = compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                state["ok"] = False
                _compile_failed(e)
                return eager(*args, **kwargs)
            state["ok"] = True
            return out
        return compiled(*args, **kwargs)

    call.compile_state = state
    if is_module:
        obj._compiled_call_impl = call  # what nn.Module.compile() sets; __call__ uses it
        obj._compile_state = state
        return obj
    return call


def compile_status(obj) -> str:
    """'compiled' | 'eager (compile failed)' | 'not yet called' | 'eager' for what ``maybe_compile`` returned."""
    state = getattr(obj, "_compile_state", None) or getattr(obj, "compile_state", None)
    if state is None:
        return "eager"
    return {True: "compiled", False: "eager (compile failed)", None: "not yet called"}[state["ok"]]


def _compile_failed(e: BaseException) -> None:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    warnings.warn(f"torch.compile failed ({type(e).__name__}: {first}); running eagerly", RuntimeWarning,
                  stacklevel=3)


def compile_mode(device: torch.device, cuda_graphs: bool, base: str | None = None) -> tuple[str | None, str]:
    """The torch.compile mode and a note. ``base``: None/"default" or "max-autotune-no-cudagraphs"; CUDA graphs
    (only on CUDA) turn them into "reduce-overhead" and "max-autotune"."""
    base = None if base in (None, "default") else base
    if not cuda_graphs:
        return base, ""
    if torch.device(device).type != "cuda":
        return base, "cuda graphs requested but the device is not CUDA: ignored"
    if base == "max-autotune-no-cudagraphs":
        return "max-autotune", "cuda graphs (torch.compile mode=max-autotune)"
    return "reduce-overhead", "cuda graphs (torch.compile mode=reduce-overhead)"


def uses_cuda_graphs(mode: str | None) -> bool:
    """Whether a torch.compile mode records CUDA graphs (the step must then mark each replay's start)."""
    return mode in ("reduce-overhead", "max-autotune")


def resolve_compile(compile_flag: bool | None, cuda_graphs: bool, device: torch.device,
                    base_mode: str | None = None) -> tuple[bool, str | None]:
    """(compile or not, torch.compile mode) for a run: ``compile=None`` is on for CUDA, off on CPU; CUDA graphs
    only on CUDA and only when compiling; ``base_mode`` is the config's ``compile_mode``."""
    device = torch.device(device)
    enabled = device.type == "cuda" if compile_flag is None else bool(compile_flag)
    mode = compile_mode(device, cuda_graphs, base_mode)[0] if enabled else None
    return enabled, mode


def compile_objective(objective, compile_flag: bool | None, cuda_graphs: bool, device,
                      base_mode: str | None = None) -> tuple[object, bool]:
    """``maybe_compile`` the training objective as a run's config asks; returns (objective, uses CUDA graphs)."""
    enabled, mode = resolve_compile(compile_flag, cuda_graphs, device, base_mode)
    if not enabled:
        return objective, False
    if BACKEND is not None:  # torch.compile takes a backend or a mode, not both (tests use aot_eager)
        return maybe_compile(objective, True, backend=BACKEND), False
    return maybe_compile(objective, True, mode=mode), uses_cuda_graphs(mode)
