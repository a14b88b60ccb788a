"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread, and do not stall on a busy machine: use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def killed_after_first_checkpoint(monkeypatch):
    """``run(start)``: call ``start()`` (a training run) with the loop dying right after it writes its first
    checkpoint, as a killed run would; the run's ``KeyboardInterrupt`` is expected and swallowed."""
    from effdet_graph.training import loop

    def run(start):
        save = loop.save_checkpoint

        def save_then_die(*args, **kwargs):
            save(*args, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
        try:
            with pytest.raises(KeyboardInterrupt):
                start()
        finally:
            monkeypatch.undo()

    return run
