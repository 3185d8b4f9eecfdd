"""One-line errors: every message the project shows a user is one line that names the problem and the fix."""

from __future__ import annotations


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
