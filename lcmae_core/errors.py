"""One-line errors: every message the project shows a user is one line that names the problem and the fix."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
import threading

INTERRUPTED = "interrupted; rerun the same command to resume"
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2  # a command line that cannot be parsed, or a bad value in it


class UsageError(ValueError):
    """A command line that cannot be parsed (exit status 2)."""


class DataError(ValueError):
    """A dataset that cannot be built: a missing root, a corrupt image, an unknown name. One-line message."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr, with no usage block: it raises ``UsageError``, which every
    entry point prints as ``error: ...`` and exits 2 on."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def first_line(e: BaseException, limit: int | None = None) -> str:
    """An exception's first non-empty line (cut to ``limit`` characters), or its type's name when it has none."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[0] if lines else type(e).__name__
    return text if limit is None else text[:limit]


def summary(e: BaseException) -> str:
    """One line for a user: an error re-raised from a DataLoader worker (its message carries the worker's whole
    traceback) becomes that traceback's last line, the error itself; any other, all its lines joined."""
    text = str(e)
    if "Original Traceback" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return f"in a data loader worker: {lines[-1]}"
    return " ".join(text.split()) or type(e).__name__


def _exit_interrupted(signum, frame):
    # os._exit, not sys.exit: this runs while torch and timm import, and a SystemExit raised inside an import that a
    # library guards with ``except BaseException`` is swallowed (the command then ran on and exited 0); nothing has
    # been written yet, so there is nothing to clean up
    print(INTERRUPTED, file=sys.stderr, flush=True)
    os._exit(EXIT_INTERRUPTED)


def quiet_interrupts_while_importing() -> None:
    """For ``python -m lcmae_core.<module>``, called before the module's heavy imports (torch, timm: seconds): a
    Ctrl-C during them exits with one line and 130 instead of a traceback. ``interruptible`` restores Python's
    own handler when ``main`` starts. A SIGINT ignored by the caller (a background job) stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_interrupted)


@contextlib.contextmanager
def quiet_interrupts():
    """While a command imports its modules (torch, numpy, timm: seconds), a Ctrl-C exits with one line and 130 at
    once (``_exit_interrupted``), instead of a KeyboardInterrupt raised inside an import: numpy's lazy attributes
    turn an interrupted ``import numpy.exceptions`` into a RecursionError that no ``except KeyboardInterrupt``
    catches. Python's own handler is back when the block ends. Only in the main thread, and only where Ctrl-C has
    its default disposition."""
    active = (threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if active:
        signal.signal(signal.SIGINT, _exit_interrupted)
    try:
        yield
    finally:
        if active:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def interruptible(main):
    """An entry point's ``main``: Ctrl-C at any moment ends it with one line on stderr and exit status 130, and a
    command line that cannot be parsed or holds a bad value (``UsageError``) with one line and status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is _exit_interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return EXIT_INTERRUPTED
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE

    return wrapper
