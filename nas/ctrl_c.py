"""A Ctrl-C that no library on the way can swallow.

Ray Tune calls the search's own code (the searcher and the progress line) inside ``except
Exception`` blocks that log and go on, and a KeyboardInterrupt landing inside a C
extension's first import comes out as an ImportError ("initialization failed"). Together the
Ctrl-C turned into a logged trial error and the search ran on to its end with exit 0. While
``remembered_ctrl_c()`` is active a Ctrl-C is remembered as well as raised; code Ray calls is
wrapped in ``ctrl_c_wins``, so an exception coming out of it after a Ctrl-C is the
KeyboardInterrupt again, and ``raise_if_heard()`` after Ray returns catches any that was
swallowed all the same."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

_heard = False
F = TypeVar("F", bound=Callable[..., Any])


def _on_sigint(signum: int, frame: Any) -> None:
    global _heard
    _heard = True
    raise KeyboardInterrupt


@contextmanager
def remembered_ctrl_c() -> Iterator[None]:
    """Remember any Ctrl-C heard inside the block (and raise it as Python does). Only where
    Python's own handler is in place: in the main thread, and not where SIGINT is ignored
    (``nohup``, a script's ``&``) or handled by someone else; there the block runs as it is."""
    global _heard
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _heard = False
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _heard = False


def raise_if_heard() -> None:
    """KeyboardInterrupt if a Ctrl-C was heard in the active ``remembered_ctrl_c`` block."""
    if _heard:
        raise KeyboardInterrupt


def ctrl_c_wins(fn: F) -> F:
    """``fn`` with any exception it raises after a heard Ctrl-C replaced by the
    KeyboardInterrupt (chained to it, so the traceback keeps what happened)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            raise_if_heard()
            raise

    return wrapper  # type: ignore[return-value]
