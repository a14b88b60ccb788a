"""The search-engine interface, written once and run against every registered engine (as Optuna's own tests run
against every sampler): each engine runs a tiny search with a cheap evaluate (``engine_helpers.CheapEvaluateFactory``:
AP from the analytic cost, no training), numbers its trials from 0, writes the same trial files, records failed and
rejected trials the same way, and continues a search instead of running its trials again. Engine-specific
behaviour (a SIGKILLed search, PostgreSQL, ASHA, a Ray cluster) is tested in ``test_engine_<name>.py``.

Ray's runs are slow (each Tune trial actor imports torch; seconds on two cores): marked ``slow``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from engine_helpers import CheapEvaluateFactory, read_log, space_file
from engine_helpers import local_ray as local_ray_session

from effdet_graph import InputError
from graphspec import loads_spec
from search import run as run_module
from search.cli import add_search_options
from search.engines import ENGINES, SearchEngine
from search.engines.trial_files import RECORD, read_record, trial_dir, write_record, write_spec
from search.objective import OBJECTIVES
from search.registry import Registry
from search.reporting.results import TrialRecord, best_records, write_results
from search.request import SearchRequest, TrialResources
from search.run import run_search
from search.sampling.sample import sample_point
from search.sampling.trial import Choice
from search.space import SearchSpace, builtin_space, load_search_space
from search.strategies import proxy as proxy_module
from search.strategies.proxy import ProxyTask

pytestmark = pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")  # ASHA over NaN rungs
SLOW_ENGINES = {"ray"}
NO_BUDGET = {"max_params": 10**9, "max_macs": 10**12}  # every bifpn_edges point is valid: none is rejected
MAX_MACS = 125_000_000  # about half of bifpn_edges' points are over this budget (BiFPN itself: 136 M)
FAIL = {1: "raise", 3: "nan", 4: "oom"}


def engine_params() -> list[object]:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_ENGINES else name for name in ENGINES.names()]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray (two CPUs, no dashboard) for this module's Ray searches, shut down after them."""
    pytest.importorskip("ray")
    with local_ray_session():
        yield


@pytest.fixture(params=engine_params())
def engine(request: pytest.FixtureRequest) -> SearchEngine:
    """Each registered engine, ready to run (Ray: started)."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return ENGINES.load(request.param)()


def search(
    engine: SearchEngine, space: SearchSpace, folder: Path, trials: int, objective: str = "ap", **kwargs: object
) -> list[TrialRecord]:
    """A search with the cheap evaluate, its results in ``folder/results``, the engine's state in ``folder``."""
    fail = kwargs.pop("fail", {})
    request = SearchRequest(
        space.file,
        engine=engine.name,
        trials=trials,
        objective=objective,
        study_name=str(kwargs.pop("name", "search")),
        resources=TrialResources(max_concurrent=2),
        **kwargs,
    )
    evaluate = CheapEvaluateFactory(log=str(folder / "evaluate.log"), fail=fail)
    return engine.run(space, evaluate, folder / "results", request)


def test_trials_are_numbered_from_0_and_write_the_same_files_and_failures_are_recorded(engine, tmp_path):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    results = tmp_path / "results"
    records = search(engine, space, tmp_path, 6, fail=FAIL)

    by_number = {r.number: r for r in records}
    assert len(records) == 6 and sorted(by_number) == list(range(6))
    assert {n: r.state for n, r in by_number.items() if r.state != "complete"} == dict.fromkeys(FAIL, "failed")
    assert by_number[1].error == "ValueError: planted failure in trial 1"
    assert by_number[3].error.startswith("FloatingPointError: the trial produced NaN: {'AP': nan}")
    assert by_number[4].error.startswith("OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB")
    for number, record in by_number.items():  # failed ones too: the candidate was written before it failed
        expected = trial_dir(results, number) / f"bifpn_edges_trial{number:04d}.yaml"
        assert record.spec_file == str(expected) and expected.is_file() and record.macs > 0 and record.params > 0
        assert f"bifpn_edges_trial{number:04d}" in expected.read_text()  # the spec's name: the trial number again
        written = read_record(results, number)
        assert written is not None and (written.number, written.state, written.error) == (
            number,
            record.state,
            record.error,
        )
        assert (written.spec_file, written.macs, written.params) == (record.spec_file, record.macs, record.params)
        if record.state == "complete":
            assert 0 < record.metrics["AP"] < 1 and record.error is None and written.metrics == record.metrics
            assert (trial_dir(results, number) / "metrics.txt").is_file()  # what the evaluate wrote
    evaluated = Counter(row.number for row in read_log(tmp_path / "evaluate.log") if row.event == "start")
    assert evaluated == Counter(range(6))  # the evaluate saw the same numbers, each once

    write_results(records, OBJECTIVES["ap"], results)
    with (results / "leaderboard.csv").open(newline="") as handle:
        rows = {int(row["trial"]): row for row in csv.DictReader(handle)}
    assert sorted(rows) == list(range(6))
    assert rows[4]["state"] == "failed" and "OutOfMemoryError" in rows[4]["error"]
    best = max((r for r in records if r.state == "complete"), key=lambda r: r.metrics["AP"])
    assert [p.name for p in (results / "best").iterdir()] == [Path(best.spec_file).name]


def test_rejected_points_are_recorded_untrained_and_ap_against_macs_gives_a_pareto_front(engine, tmp_path):
    objective = OBJECTIVES["ap_macs"]
    space = load_search_space(space_file(tmp_path, "bifpn_edges", max_macs=MAX_MACS))
    results = tmp_path / "results"
    records = search(engine, space, tmp_path, 8, "ap_macs")

    states = Counter(r.state for r in records)
    assert sorted(r.number for r in records) == list(range(8))
    assert set(states) == {"complete", "rejected"} and states["rejected"] >= 1 and states["complete"] >= 2, states
    for r in records:
        if r.state == "rejected":
            assert r.error.startswith("feature network over budget: MACs") and r.metrics == {}
            assert (r.spec_file, r.macs, r.params) == (None, None, None)
            assert not trial_dir(results, r.number).exists()
        else:
            assert r.macs <= MAX_MACS and Path(r.spec_file).is_file()
    evaluated = sorted(row.number for row in read_log(tmp_path / "evaluate.log") if row.event == "start")
    assert evaluated == sorted(r.number for r in records if r.state != "rejected")  # rejected: never trained

    best = write_results(records, objective, results)
    done = [r for r in records if r.state == "complete"]
    front = [
        r
        for r in done
        if not any(
            o.metrics["AP"] >= r.metrics["AP"]
            and o.macs <= r.macs
            and (o.metrics["AP"], o.macs) != (r.metrics["AP"], r.macs)
            for o in done
        )
    ]
    pareto = best_records(records, objective)  # (a point sampled twice is on it once)
    assert {(r.macs, r.metrics["AP"]) for r in pareto} == {(r.macs, r.metrics["AP"]) for r in front}
    assert sorted(p.name for p in best) == sorted(Path(r.spec_file).name for r in pareto)
    assert sorted(p.name for p in (results / "best").iterdir()) == sorted(p.name for p in best)
    for path in best:
        loads_spec(path.read_text(), path.name)  # a best spec is a spec file that loads
    assert (results / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (results / "leaderboard.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert Counter(row["state"] for row in rows) == states


def test_the_same_call_again_continues_the_search_without_running_trials_again(engine, tmp_path):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    first = search(engine, space, tmp_path, 3, fail={2: "raise"})
    evaluated = read_log(tmp_path / "evaluate.log")
    assert len(evaluated) >= 3

    again = search(engine, space, tmp_path, 3, fail={2: "raise"})
    resumed = search(engine, space, tmp_path, 3, fail={2: "raise"}, resume=True)
    assert read_log(tmp_path / "evaluate.log") == evaluated  # no trial evaluated again
    key = lambda r: (r.number, r.state, r.spec_file, r.metrics, r.error)  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, resumed)) == sorted(map(key, first))
    assert [r.state for r in sorted(first, key=lambda r: r.number)] == ["complete", "complete", "failed"]


@pytest.mark.parametrize("name", ENGINES.names())
def test_resume_without_a_search_to_continue_fails_before_any_trial(name, tmp_path):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    engine = ENGINES.load(name)()
    with pytest.raises(InputError, match=r"^--resume: no .*nothing.*; drop --resume to start it$"):
        search(engine, space, tmp_path, 2, name="nothing", resume=True)
    assert read_log(tmp_path / "evaluate.log") == []


# --- a start that fails, a state file cut short ----------------------------------------------------------------

#: Where each engine keeps the state it restores from, for ``search()``'s arguments (name "search").
STATE_FILE = {"optuna": Path("results/study.db"), "ray": Path("search/tuner.pkl")}


class _Unpicklable:
    """What a sampler holding a ``threading.Lock`` was to Tune (Optuna 5.1's NSGA-II): its pickling fails."""

    def __reduce__(self):
        raise TypeError("cannot pickle '_thread.lock' object")


def _fail_at_start(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the engine's next start fail while it creates its study or experiment."""
    if engine.name == "ray":  # as Optuna 5.1 did it: the searcher's sampler does not pickle into tuner.pkl
        import optuna

        from search.engines import ray_engine

        def unpicklable_sampler(*args: object) -> optuna.samplers.BaseSampler:
            sampler = optuna.samplers.RandomSampler(seed=0)
            sampler.lock = _Unpicklable()  # type: ignore[attr-defined]
            return sampler

        monkeypatch.setattr(ray_engine, "make_sampler", unpicklable_sampler)
    else:
        import optuna

        def create_study(**kwargs: object) -> optuna.Study:
            raise RuntimeError("planted failure while the study is created")

        monkeypatch.setattr(optuna, "create_study", create_study)


def test_a_search_whose_start_failed_leaves_nothing_that_stops_the_same_command_again(engine, tmp_path, monkeypatch):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    with monkeypatch.context() as patch:
        _fail_at_start(engine, patch)
        with pytest.raises((TypeError, RuntimeError), match="planted failure|cannot pickle"):
            search(engine, space, tmp_path, 3)
    assert read_log(tmp_path / "evaluate.log") == []

    records = search(engine, space, tmp_path, 3)
    assert sorted((r.number, r.state) for r in records) == [(n, "complete") for n in range(3)]


def test_a_state_file_cut_short_before_any_trial_ran_starts_the_search_over(engine, tmp_path):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    state = tmp_path / STATE_FILE[engine.name]
    state.parent.mkdir(parents=True)
    state.write_bytes(b"")  # killed while it was first written: nothing was done there, nothing is lost

    records = search(engine, space, tmp_path, 2)
    assert sorted((r.number, r.state) for r in records) == [(0, "complete"), (1, "complete")]


@pytest.mark.parametrize("keep", [0.0, 0.5])
def test_a_state_file_cut_short_after_trials_ran_is_one_line_naming_it_and_the_trials_are_kept(engine, tmp_path, keep):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    search(engine, space, tmp_path, 2)
    state = tmp_path / STATE_FILE[engine.name]
    with state.open("r+b") as handle:
        handle.truncate(int(keep * state.stat().st_size))
    kept = {path: path.read_bytes() for path in (tmp_path / "results" / "trials").rglob("*") if path.is_file()}
    evaluated = read_log(tmp_path / "evaluate.log")

    with pytest.raises(InputError) as refusal:
        search(engine, space, tmp_path, 3)
    message = str(refusal.value)
    assert "\n" not in message and message.endswith("start a new search with --out another folder")
    named = str(state) if keep or engine.name == "ray" else f"{tmp_path / 'results'}: holds 2 trial(s)"
    assert message.startswith(named), message
    assert read_log(tmp_path / "evaluate.log") == evaluated  # no trial ran
    assert {path: path.read_bytes() for path in kept} == kept  # nothing deleted or changed


# --- the registry -------------------------------------------------------------------------------------------------


def test_every_registered_engine_is_a_search_engine_and_the_command_line_offers_them_all():
    names = ENGINES.names()
    assert {"optuna", "ray"} <= set(names)
    for name in names:
        engine = ENGINES.load(name)
        assert issubclass(engine, SearchEngine) and engine.name == name
    parser = argparse.ArgumentParser()
    add_search_options(parser, engine="optuna")
    (action,) = [a for a in parser._actions if a.dest == "engine"]
    assert tuple(action.choices) == names
    with pytest.raises(InputError, match=r"^unknown engine 'nope'; choose one of optuna, ray"):
        ENGINES.load("nope")


class OneShotStandIn(SearchEngine):
    """A third strategy as a one-shot search would be wired in: it samples every trial in this process and
    evaluates one, with the shared trial files; it keeps what the search command hands it."""

    name = "one_shot_stand_in"
    calls: list[tuple[str, object]] = []

    def check(self, request: SearchRequest) -> None:
        self.calls.append(("check", (request.storage, request.device, request.resources)))
        super().check(request)

    def run(
        self, space: SearchSpace, make_evaluate: Callable[[], object], results_dir: Path, request: SearchRequest
    ) -> list[TrialRecord]:
        trials, storage, resume, resources = request.trial_count, request.storage, request.resume, request.resources
        self.calls.append(("run", (make_evaluate(), trials, storage, resume, resources, results_dir.is_dir())))
        records = []
        for number in range(trials):
            candidate = sample_point(space, _Defaults(number))
            spec = write_spec(candidate, results_dir)
            record = TrialRecord(number, "complete", str(spec), candidate.cost.params, candidate.cost.macs)
            record.metrics = {"AP": 0.1 * (number + 1)}
            write_record(record, results_dir)
            records.append(record)
        return records


class _Defaults:
    """A trial that picks each choice's last value (the stand-in's 'supernet' has one path: within budget)."""

    def __init__(self, number: int):
        self.number = number

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return high

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return high

    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Choice:
        return choices[-1]


def test_the_search_command_runs_any_registered_engine_through_the_interface(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "prepare_dataset", lambda space, results: tmp_path / "data")
    caches: list[Path] = []  # the space's trials share a feature cache, built before the engine runs
    monkeypatch.setattr(proxy_module, "prepare_shared_cache", lambda space, detector, data, *rest: caches.append(data))
    monkeypatch.setattr(OneShotStandIn, "calls", [])
    engines: Registry[SearchEngine] = Registry("engine", "--engine")
    engines.register(OneShotStandIn.name, OneShotStandIn)
    monkeypatch.setattr(run_module, "ENGINES", engines)
    outcome = run_search(
        SearchRequest(
            builtin_space("bifpn_edges"),
            engine=OneShotStandIn.name,
            trials=2,
            results_dir=tmp_path / "out",
            smoke_test=True,
            seed=3,
            device="cpu",
            resources=TrialResources(gpus=0),
        )
    )
    (check, checked), (run, ran) = OneShotStandIn.calls
    assert (check, checked) == ("check", (None, "cpu", TrialResources(gpus=0)))
    evaluate, trials, storage, resume, resources, made = ran
    assert (run, trials, storage, resume, resources, made) == ("run", 2, None, False, TrialResources(gpus=0), True)
    assert isinstance(evaluate, ProxyTask) and (evaluate.device, evaluate.seed) == ("cpu", 3)
    assert evaluate.data == tmp_path / "data" and not evaluate.measure_latency
    assert [r.number for r in outcome.records] == [0, 1] and caches == [tmp_path / "data"]
    assert [p.name for p in outcome.best_specs] == ["bifpn_edges_trial0001.yaml"]
    assert (tmp_path / "out" / "trials" / "0001" / RECORD).is_file()


def test_a_bad_device_fails_before_the_results_folder_is_made(tmp_path):
    with pytest.raises(InputError, match=r"^--device 'gpu' is not a device; use cpu, cuda or cuda:N"):
        run_search(SearchRequest(builtin_space("bifpn_edges"), device="gpu", results_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_trial_record_round_trips(tmp_path):
    record = TrialRecord(7, "failed", "x.yaml", 10, 20, {"AP": 0.5}, 1.5, "ValueError: no")
    write_record(record, tmp_path)
    assert read_record(tmp_path, 7) == record and read_record(tmp_path, 8) is None
    assert dataclasses.asdict(record)["number"] == 7 and (tmp_path / "trials" / "0007" / RECORD).is_file()
