"""A trial run again in its own folder (what a restored Ray search does with a trial a kill cut off) resumes the
training it left there, exactly, instead of refusing to train over its checkpoint (found by the crash harness)."""

from __future__ import annotations

import random

from search.run import smoke_space
from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.trial import SeededTrial
from search.space import builtin_space, load_search_space
from search.strategies.proxy import ProxyTask, prepare_dataset


def test_a_trial_run_again_resumes_its_training(tmp_path, one_torch_thread):
    space = smoke_space(load_search_space(builtin_space("bifpn_edges")))
    rng = random.Random(0)
    for number in range(20):
        try:
            candidate = sample_point(space, SeededTrial(rng, number))
            break
        except Rejected:
            continue
    trial = tmp_path / "trials" / "0000"
    trial.mkdir(parents=True)
    (trial / candidate.file_name).write_text(candidate.spec_text, encoding="utf-8")
    task = ProxyTask(space, prepare_dataset(space, tmp_path), seed=0, device="cpu")
    first = task(candidate, trial, None)
    assert (trial / "train" / "last.pt").exists()
    assert task(candidate, trial, None) == first  # resumed at its last step: evaluated again, the same AP
