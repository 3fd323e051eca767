"""A Ctrl-C during a search is never lost: one heard inside ``remembered_ctrl_c`` comes back
as KeyboardInterrupt out of code Ray calls (``ctrl_c_wins``) even when a C extension's import
turned it into an ImportError, and ``raise_if_heard`` finds one that a library swallowed.
The whole path, a real search interrupted, is tests/test_robustness.py's Ctrl-C test."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from nas.ctrl_c import ctrl_c_wins, raise_if_heard, remembered_ctrl_c
from tests.test_searcher import make_searcher, result


@pytest.fixture(autouse=True)
def python_hears_ctrl_c():
    """Python's own SIGINT handler, as in a terminal: the tests may be started with SIGINT
    ignored (a background job of a non-interactive shell, as CI can run them)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c_into_an_import() -> None:
    """What a Ctrl-C landing in a C extension's first import looks like to its caller."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler runs at the next bytecode: the sleep is cut short
    except KeyboardInterrupt as exc:
        raise ImportError("initialization failed") from exc


def test_a_swallowed_ctrl_c_is_raised_again():
    with remembered_ctrl_c():
        with contextlib.suppress(Exception):  # Ray Tune, an error in a searcher's callback
            ctrl_c_into_an_import()
        with pytest.raises(KeyboardInterrupt):
            raise_if_heard()


def test_an_error_after_a_ctrl_c_is_the_ctrl_c_and_keeps_its_cause():
    with remembered_ctrl_c(), pytest.raises(KeyboardInterrupt) as info:
        ctrl_c_wins(ctrl_c_into_an_import)()
    assert isinstance(info.value.__context__, ImportError)


def test_errors_without_a_ctrl_c_pass_unchanged_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)

    @ctrl_c_wins
    def fails():
        raise ImportError("a real one")

    with remembered_ctrl_c():
        with pytest.raises(ImportError, match="a real one"):
            fails()
        raise_if_heard()  # nothing heard: no error
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(ImportError):
        fails()


def test_the_searchers_callbacks_give_the_ctrl_c_back_to_the_search(tmp_path, monkeypatch):
    """The CI failure this fixes: the first child's record drew the first plot, the Ctrl-C
    landed in matplotlib's backend import, and Ray logged the ImportError and went on."""
    searcher = make_searcher(tmp_path)
    searcher.suggest("a")
    monkeypatch.setattr(searcher.log, "plot", ctrl_c_into_an_import)
    with remembered_ctrl_c(), pytest.raises(KeyboardInterrupt):
        searcher.on_trial_complete("a", result(1.0))
    assert [r["trial_id"] for r in searcher.log.records] == ["a"]  # recorded before the plot


def test_a_swallowed_ctrl_c_ends_the_search_at_rays_next_step(tmp_path):
    """Ray calls the progress line's on_step_begin unguarded, every 0.1 s or so: a Ctrl-C
    that Ray only logged ends the search there, not when the last child finishes."""
    from nas.progress import ProgressLine

    searcher = make_searcher(tmp_path)
    line = ProgressLine(searcher.log, searcher, 100.0)
    with remembered_ctrl_c():
        line.on_step_begin(iteration=0, trials=[])  # nothing heard: nothing happens
        with contextlib.suppress(Exception):
            ctrl_c_into_an_import()
        with pytest.raises(KeyboardInterrupt):
            line.on_step_begin(iteration=1, trials=[])


def test_a_search_that_ignores_sigint_keeps_ignoring_it():
    """Started with nohup or a script's &, a search runs with SIGINT ignored: the block must
    not install a handler that a signal to the process group would then raise through."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with remembered_ctrl_c():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            raise_if_heard()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
