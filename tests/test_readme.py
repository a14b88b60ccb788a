"""README.md and docs/ stay true: their Python examples (and those of ``effdet_graph``'s docstring) run, their
command lines parse with the real parsers, the table of built-in topologies is what ``effdet-graph list`` prints,
every benchmark figure they quote is the value stored in ``benchmarks/results/*.json``, and no measured figure
(a decimal, a time, a ratio, a percentage) is written that no check here backs.

Fenced blocks of README.md and docs/*.md (docs/spec.md's are tests/graphspec/test_docs_examples.py's), by info string:
  ```python    run from the repository root, in one fresh namespace each
  ```bash      every ``effdet-graph ...`` command is parsed by ``effdet_graph.cli.make_parser()`` (with the
               ``search`` plugin its entry point registers), every ``python search/<script>.py ...`` by the
               script's own parser; a renamed command or flag fails here
  ```          output: its figures are checked like the prose's
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import re
import runpy
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from effdet_graph.cli import main, make_parser

ROOT = Path(__file__).resolve().parents[1]
#: every page a user reads: the README, then docs/ in name order
PAGES = {
    name: (ROOT / name).read_text(encoding="utf-8")
    for name in ["README.md", *(f"docs/{path.name}" for path in sorted((ROOT / "docs").glob("*.md")))]
}
TEXT = PAGES["README.md"]
#: the spec language's reference: tests/graphspec/test_docs_examples.py runs its fenced blocks and checks their output
SPEC_DOC = "docs/spec.md"
#: reference pages whose tables list keys and files, not results (test_every_figure_is_backed still reads them)
REFERENCE_PAGES = (SPEC_DOC, "docs/reliability.md")
#: Where the benchmarks' figures are written: the README and every page of docs/.
BENCHMARK_FILES = "README.md and docs/*.md"
BENCHMARKS = "\n".join(PAGES.values())
RESULTS = ROOT / "benchmarks" / "results"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
BLOCKS = [
    (page, m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1)
    for page, text in PAGES.items()
    if page != SPEC_DOC
    for m in FENCE.finditer(text)
]
PYTHON = [(body, f"{page}:{line}") for page, info, body, line in BLOCKS if info == "python"]
PYTHON_PREFIX = re.compile(r"(\S*/)?python3?$")


def _commands() -> list[tuple[list[str], str]]:
    """Every command of the bash blocks, split at ``&&``, comments dropped, with its page and line."""
    commands = []
    for page, info, body, first in BLOCKS:
        if info != "bash":
            continue
        for offset, text in enumerate(body.splitlines(), start=1):
            words: list[str] = []
            for word in [*shlex.split(text, comments=True), "&&"]:
                if word in ("&&", ";", "||"):
                    if words:
                        commands.append((words, f"{page}:{first + offset}"))
                    words = []
                else:
                    words.append(word)
    return commands


def _as_cli(argv: list[str]) -> list[str] | None:
    """The ``effdet-graph`` command a README command runs: itself, or what ``torchrun ... -m effdet_graph.cli``
    starts in every process."""
    if argv[0] == "effdet-graph":
        return argv
    if argv[0] == "torchrun" and "-m" in argv and argv[argv.index("-m") + 1] == "effdet_graph.cli":
        return ["effdet-graph", *argv[argv.index("-m") + 2 :]]
    return None


COMMANDS = _commands()
CLI = [(cli, where) for argv, where in COMMANDS if (cli := _as_cli(argv)) is not None]
SCRIPTS = [
    (argv, where)
    for argv, where in COMMANDS
    if PYTHON_PREFIX.fullmatch(argv[0]) and len(argv) > 1 and argv[1].startswith("search/")
]


def test_the_readme_has_examples():
    python, cli = [b for b, where in PYTHON if where.startswith("README.md:")], _in_readme(CLI)
    assert len(python) >= 2 and len(cli) >= 20 and _in_readme(SCRIPTS)
    commands = {argv[1] for argv, _ in cli}
    assert {"build", "list", "train", "eval", "predict", "compare", "search", "make-dataset"} <= commands


def _in_readme(commands: list[tuple[list[str], str]]) -> list[tuple[list[str], str]]:
    return [(argv, where) for argv, where in commands if where.startswith("README.md:")]


@pytest.mark.parametrize("body, where", PYTHON, ids=[where for _, where in PYTHON])
def test_python_blocks_run(body, where, monkeypatch, one_torch_thread):
    monkeypatch.chdir(ROOT)
    exec(compile(body, where, "exec"), {"__name__": "readme"})


def test_the_facades_docstring_examples_run_from_any_folder(tmp_path, monkeypatch, one_torch_thread):
    """``effdet_graph``'s module docstring is the first code a user of the API reads: its examples run, as
    written, outside the repository."""
    import doctest

    import effdet_graph

    monkeypatch.chdir(tmp_path)
    examples = doctest.DocTestFinder().find(effdet_graph, "effdet_graph")[0]
    assert len(examples.examples) >= 10
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(examples)
    assert runner.summarize(verbose=False).failed == 0


def _parse(parse: Callable[[], Any], where: str, capsys: pytest.CaptureFixture[str]) -> Any:
    try:
        return parse()
    except SystemExit as exc:
        pytest.fail(f"{where} does not parse (exit {exc.code}): {capsys.readouterr().err.strip()}")


@pytest.mark.parametrize("argv, where", CLI, ids=[where for _, where in CLI])
def test_cli_commands_parse(argv, where, capsys):
    parser = make_parser()
    args = _parse(lambda: parser.parse_args(argv[1:]), f"{where}: {shlex.join(argv)}", capsys)
    assert callable(args.run)


@pytest.mark.parametrize("argv, where", SCRIPTS, ids=[where for _, where in SCRIPTS])
def test_search_script_commands_parse(argv, where, monkeypatch, capsys):
    parsed = []
    monkeypatch.setattr("search.cli.run_command", lambda run, args: parsed.append(args) or 0)
    monkeypatch.setattr(sys, "argv", argv[1:])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / argv[1]), run_name="__main__")
    where = f"{where}: {shlex.join(argv)}"
    assert exit_.value.code == 0 and len(parsed) == 1, f"{where} does not parse: {capsys.readouterr().err.strip()}"


def _table(heading: str) -> list[list[str]]:
    """The cells of the first markdown table after ``heading``, header and rule left out."""
    section = TEXT[TEXT.index(heading) :]
    rows = re.search(r"^\|.*?(?=^[^|])", section, re.MULTILINE | re.DOTALL)
    assert rows, heading
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows.group(0).splitlines()[2:]]


def test_builtin_topologies_table_is_what_list_prints(capsys, one_torch_thread):
    assert main(["list"]) == 0
    printed = {}
    for row in capsys.readouterr().out.splitlines()[2:]:
        words = row.split()
        if len(words) >= 6 and words[1].isdigit():
            printed[words[0]] = words[1:6]
    table = {cells[0]: cells[1:] for cells in _table("### The built-in topologies")}
    assert table == printed


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _compile_row(row: dict[str, Any]) -> str:
    """A spec's compile time, and whether it meets the target (``overrides``: the width and repeats it was
    compiled at, when not the spec's own)."""
    o = row["overrides"]
    spec = f"{row['spec'].split()[0]} at width {o['width']}, {o['repeats']} repeats" if o else row["spec"]
    met = "met" if row["ok"] else "**missed**"
    return f"| {spec} | {row['median_ms']:.0f} ms | < {row['target_ms']:.0f} ms: {met} |"


def _feature_network_rows(r: dict[str, Any]) -> list[str]:
    cost, latency = r["cost"], r["latency"]
    ours, effdet = latency["models"]["ours"], latency["models"]["effdet"]
    return [
        *(_compile_row(row) for row in r["compile"]),
        f"| cost model, the {cost['specs']} built-in specs | {cost['cost_per_s']:,} specs/s (with loading the spec: "
        f"{cost['load_and_cost_per_s']:,} specs/s) | ≥ {cost['target_per_s']:,.0f} /s |",
        f"| BiFPN D0 forward, batch 1, 512×512, ours / effdet {r['environment']['effdet']} | "
        f"{ours['median_ms']:.1f} ms / {effdet['median_ms']:.1f} ms = **{latency['ratio_ours_effdet']:.2f}** "
        f"| ≤ {latency['target_ratio']} |",
        f"the same parameter count ({ours['params']:,})" if latency["params_equal"] else "never: parameters differ",
        f"(CPU only, {r['environment']['threads']} threads, torch {r['environment']['torch'].split('+')[0]}, "
        f"effdet {r['environment']['effdet']})",
    ]


def _detector_rows(r: dict[str, Any]) -> list[str]:
    fwd, step, params = r["forward_b1_ms"], r["train_step_b4_ms"], r["params"]
    assert params["ours"] == params["effdet"]
    rows = [
        f"converted effdet\nweights, {params['ours']:,} parameters each",
        f"on the CPU, {r['threads']} threads, fp32",
        f"| eval forward, batch 1 | {fwd['ours']:.0f} ms | {fwd['effdet']:.0f} ms | **{fwd['ratio']:.2f}** "
        f"| ≤ {fwd['target']} |",
        f"| training step, batch 4 | {step['ours'] / 1e3:.1f} s | {step['effdet'] / 1e3:.1f} s "
        f"| **{step['ratio']:.2f}** | ≤ {step['target']} |",
    ]
    if "cuda" not in r:
        return [*rows, "the stored results have no GPU run yet"]
    cuda = r["cuda"]
    labels = (
        ("forward_fp16_b8_ms", "eval forward, batch 8, fp16 autocast"),
        ("forward_fp16_b8_compiled_ms", "eval forward, batch 8, fp16 autocast, `torch.compile`"),
        ("train_step_bf16_b16_ms", "training step, batch 16, bf16 autocast"),
    )
    rows.append(cuda["name"])
    for key, label in labels:
        c = cuda[key]
        rows.append(f"| {label} | {c['ours']:.1f} ms | {c['effdet']:.1f} ms | **{c['ratio']:.2f}** |")
    return rows


def _search_rows(r: dict[str, Any]) -> list[str]:
    target = f"< {100 * r['overhead_target']:.0f} %"
    rows = []
    for space, engines in r["overhead"].items():
        for engine, o in engines.items():
            rows.append(
                f"| {space} | {engine} | {o['trials']} ({o.get('complete', 0)} / {o.get('rejected', 0)}) "
                f"| {o['start_s']:.1f} | {o['proxy_s'] / o['proxy_tasks']:.2f} | {o['overhead_per_trial_s']:.2f} "
                f"| **{100 * o['overhead_fraction']:.1f} %** | {target} |"
            )
    ray_init = [engines["ray"]["ray_init_s"] for engines in r["overhead"].values()]
    rows.append(f"`ray.init` took\n{min(ray_init):.1f}–{max(ray_init):.1f} s more")
    trials = {o["trials"] for engines in r["overhead"].values() for o in engines.values()}
    assert len(trials) == 1
    rows.append(f"Each engine runs {trials.pop()} trials of the `--smoke-test` budget")
    scopes = {"detector": "whole detector", "feature_network": "feature network"}
    for space, f in r["filtering"].items():
        rows.append(
            f"| {space} | {scopes[f['scope']]} | {f['specs_per_s']:.1f} | {f['peer_specs_per_s']:.2f} "
            f"| {f['ratio']:.0f}× | {100 * f['accepted_rate']:.0f} % | {100 * f['rejected_budget_rate']:.0f} % |"
        )
    return rows


def _train_loop_rows(r: dict[str, Any]) -> list[str]:
    cpu = r["cpu"]
    legacy = cpu["legacy_settings_images_per_s"]
    rows = [
        f"| default loop (losses read every 10 steps) | {cpu['images_per_s']:.1f} |",
        f"| with `--deterministic --log-every 1`, the loop's earlier settings | {legacy:.1f} |",
        f"{r['recipe']['steps']} steps after a warm-up run",
        f"({r['machine']['threads']} threads)",
    ]
    return rows if "cuda" in r else [*rows, "the stored results have no GPU run yet"]


def _frozen_backbone_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for size in ("128px", "256px"):
        row, cache = r[size], r[size]["cache"]
        rows.append(
            f"| {size[:-2]} px | {row['trained_images_per_s']:.1f} | {row['frozen_images_per_s']:.1f} "
            f"({row['frozen_ratio']:.2f}×) | {row['cached_images_per_s']:.1f} ({row['cached_ratio']:.2f}×) "
            f"| {cache['build_s']:.1f} s, {cache['megabytes']:.0f} MB |"
        )
    met = r["128px"]["cached_ratio"] >= r["recipe"]["target"]
    return [*rows, f"target ≥ {r['recipe']['target']:.0f}× at 128 px: {'met' if met else 'not met'}"]


def _train_step_rows(r: dict[str, Any]) -> list[str]:
    counts, targets, loss = r["cpu"]["counts"], r["cpu"]["targets_ms"], r["cpu"]["loss_forward_ms"]
    labels = {
        "old": "image by image (before)",
        "new_padded_batch_max": "batched, padded to the batch's largest (the CPU default)",
        "new_padded_100": "batched, padded to 100 boxes (GPU and `--compile`)",
    }
    setup = r["setup"]
    boxes = setup["boxes_per_image"]
    return [
        f"({setup['batch']} images at {setup['image_size'][0]}×{setup['image_size'][1]}, {setup['anchors']:,} anchors, "
        f"{setup['num_classes']} classes, {min(boxes)}–{max(boxes)} boxes per image)",
        f"on the CPU ({r['machine']['torch_threads']} thread)",
        *(
            f"| {label} | {counts[key]['ops_forward']} | {counts[key]['host_syncs']} | {targets[key]:.1f} "
            f"| {loss[key]:.0f} |"
            for key, label in labels.items()
        ),
    ]


def _ranking_rows(r: dict[str, Any]) -> list[str]:
    rows = _ground_truth_rows(r)
    for m in r["methods"]:
        rows.append(
            f"| {m['name']} | {m['tau']:.2f} | {m['rho']:.2f} | {m['precision_at_3']:.2f} | {m['seconds']:,.1f} s "
            f"| {m['topologies']} | {m['ceiling']:.2f} |"
        )
    return rows


def _ground_truth_rows(r: dict[str, Any]) -> list[str]:
    """A recipe's ranking report without its methods: the runs, their spread and the targets' figures."""
    seeds, sd = r["seeds"], r["ap_sd"]
    rows = [
        f"{r['topologies']} topologies × {len(seeds)} seeds",
        f"{r['minutes_per_run']:.1f} minutes a run",
        f"Seed-to-seed Kendall tau **{r['seed_to_seed_tau_builtin']:.2f}** over the {r['builtin_topologies']} "
        f"built-in topologies and the control, **{r['seed_to_seed_tau']:.2f}** over all {r['topologies']}",
        f"mean seed standard deviation of AP {r['seed_sd']:.3f}",
        *(f"{name.upper() if name == 'fpn' else 'BiFPN'} {gap:+.1f}" for name, gap in r["control_gap_sd"].items()),
    ]
    for name, ap in r["mean_ap"].items():
        runs = " | ".join(f"{a:.3f}" for a in r["ap_by_seed"][name])
        rows.append(f"| {name} | {runs} | **{ap:.3f}** | {sd[name]:.3f} |")
    return rows


def _warmup_rows(r: dict[str, Any]) -> list[str]:
    def low(report: dict[str, Any]) -> int:
        return sum(ap < 0.6 for aps in report["ap_by_seed"].values() for ap in aps)

    before = _load("ranking_report-no-jitter.json")
    return [*_ground_truth_rows(r), f"({low(r)} runs below AP 0.6 where the no-jitter recipe had {low(before)})"]


def _learned_rows(recipe: str) -> list[str]:
    """Which of a beacon recipe's runs learned the beacon: those that name nearly every box they find right
    (AP / class-agnostic AP at least 0.95, ``benchmarks.bench_class_agnostic``)."""
    runs = {row["topology"]: row for row in _load("class_agnostic.json")["reports"][recipe]["topologies"]}
    control = runs.pop("nofusion")
    fusing = [(ap, agnostic) for row in runs.values() for ap, agnostic in zip(row["AP"], row["AP_agnostic"])]
    learned = [ap for ap, agnostic in fusing if ap / agnostic >= 0.95]
    failed = [ap for ap, agnostic in fusing if ap / agnostic < 0.95]
    assert min(learned) > max(failed + control["AP"]), "every run that learned the beacon beats every other"
    rows = [
        f"{len(learned)} of the {len(fusing)} fusing runs learned the beacon",
        f"its AP {control['mean_AP']:.3f} against a class-agnostic AP of {control['mean_AP_agnostic']:.3f}",
    ]
    spread = f"score {min(learned):.3f}-{max(learned):.3f}"
    if len(failed) == 1:
        spread += f". The other one ({failed[0]:.3f})"
    elif failed:
        spread += f". The other {len(failed)} ({min(failed):.3f}-{max(failed):.3f})"
    rows.append(spread)
    return rows


def _beacon_rows(
    recipe: str, report_rows: Callable[[dict[str, Any]], list[str]] = _ground_truth_rows
) -> Callable[[dict[str, Any]], list[str]]:
    """The rows of a beacon recipe's report (``report_rows``: its runs, or with :func:`_ranking_rows` its methods
    too) and which of its runs learned the beacon."""
    return lambda r: [*report_rows(r), *_learned_rows(recipe)]


def _resolvable_rows(r: dict[str, Any]) -> list[str]:
    """What a report says its ground truth resolves: the topology effect, the separated pairs and the split-half
    tau over all topologies and within the ``bifpn_edges`` family."""
    every, edges = r["families"]["all"], r["families"]["bifpn_edges"]

    def half(f: dict[str, Any]) -> str:
        value, low, high = f["split_half_tau"]
        return f"{value:.2f} [{low:.2f}, {high:.2f}]"

    return [
        f"over all {every['topologies']} topologies the topology effect is real (one-way ANOVA F {every['F']:.2f}, "
        f"p {every['p']:.2g}, ICC {every['icc']:.2f}), but only {every['separated_pairs'][0]} of "
        f"{every['separated_pairs'][1]} pairs are separated",
        f"is {half(every)}",
        f"Within the {edges['topologies']} `bifpn_edges` topologies",
        "FPN and BiFPN lie {fpn:.1f} and {bifpn:.1f} seed standard deviations above the control".format(
            **r["control_gap_sd"]
        ),
        f"(F {edges['F']:.2f}, p {edges['p']:.2g}; {edges['separated_pairs'][0]} of {edges['separated_pairs'][1]} "
        f"pairs separated; split-half tau {half(edges)})",
    ]


def _verify_rows(r: dict[str, Any]) -> list[str]:
    """Each stored run made again (``python -m benchmarks.bench_ranking --verify``), as the command printed it."""
    return [f"{v['topology']} seed {v['seed']}: stored AP {v['stored_ap']:.6f}, again {v['ap']:.6f}" for v in r["runs"]]


def _variance_rows(r: dict[str, Any]) -> list[str]:
    rows = {row["source"]: row for row in r["rows"]}
    still = rows["no augmentation"]["aps"]
    return [
        *(f"| {row['source']} | {row['mean']:.3f} | {row['sd']:.3f} |" for row in r["rows"]),
        f"sd {rows['weights only']['sd']:.3f} with the data fixed, {rows['data only']['sd']:.3f} with the weights "
        "fixed",
        f"Without scale jitter the two seeds agree ({still[0]:.3f} and {still[1]:.3f})",
    ]


def _oneshot_rows(r: dict[str, Any]) -> list[str]:
    """The supernets' training minutes on the surround recipe and the ground truth, and the surround recipe's
    BatchNorm study."""
    surround, truth = (r[_load(f"ranking_report-{name}.json")["recipe_hash"]] for name in ("surround", "fixed-init"))
    rows = [
        f"{sampling} sampling: {supernet['train_seconds'] / 60:.1f} minutes of training"
        for entry in (surround, truth)
        for sampling, supernet in entry["supernets"].items()
    ]
    return rows + [
        f"| {sampling} | {row['bn_batches']} | {row['mean_ap']:.3f} | {row['tau_vs_most']:.2f} "
        f"| {row['seconds']:.1f} s |"
        for sampling, supernet in surround["supernets"].items()
        for row in supernet.get("bn_study", [])
    ]


def _compare_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The lines of ``compare``'s table of ``rows`` (as ``rows_to_json`` stored them)."""
    from dataclasses import fields

    from effdet_graph.comparison.table import CompareRow
    from effdet_graph.comparison.text import format_table

    names = {f.name for f in fields(CompareRow)}
    table = format_table([CompareRow(**{k: v for k, v in row.items() if k in names}) for row in rows])
    return [line for line in table.splitlines() if line.strip() and not line.startswith("---")]


def _compare_seeds_rows(r: dict[str, Any]) -> list[str]:
    return [f"{r['minutes']:.1f} minutes", r["command"], *_compare_rows(r["rows"])]


def _retrained_rows(r: dict[str, Any]) -> list[str]:
    """What the one-shot search's retrained winners measured, beside its template's runs."""
    targets, retrain = r["targets"], r["retrain"]
    rows = {row["spec"]: row for row in retrain["rows"]}
    template, best = rows.pop(targets["template"]), rows.pop(targets["best_trial"])

    def fewer(key: str) -> str:
        return f"{100 * (1 - best[key] / template[key]):.0f}%"

    def seeds(row: dict[str, Any]) -> str:
        return " and ".join(f"{m['AP']:.3f}" for m in row["seed_metrics"])

    low, high = sorted(m["AP"] for m in template["seed_metrics"])
    assert targets["template"] in best["within_noise_of"], "the best trial is within noise of the template"
    return [
        f"({retrain['train_seconds'] / 60:.0f} minutes of training)",
        f"with {fewer('fpn_params')} fewer feature-network parameters and {fewer('fpn_macs')} fewer feature-network "
        f"MACs, and it scored {seeds(best)} with seeds 0 and 1 where BiFPN scored {seeds(template)}",
        f"whose two seeds differ by {high - low:.2f}",
        *(f"(trial {int(name[-4:])}, {row['metrics']['AP']:.3f})" for name, row in rows.items()),
    ]


def _oneshot_search_rows(r: dict[str, Any]) -> list[str]:
    targets = r["targets"]
    return [
        *_retrained_rows(r),
        f"{r['trials']} trials",
        f"{r['supernet_train_seconds'] / 60:.1f} minutes of supernet training",
        f"{r['mean_trial_seconds']:.1f} s a trial",
        f"{targets['search_in_trainings']:.2f} surround-recipe trainings",
        f"{len(r['pareto_front'])} trials on the Pareto front",
        f"{targets['best_trial']} {targets['best_trial_mean_ap']:.3f}",
        f"{targets['template']} {targets['template_mean_ap']:.3f}",
        *_compare_rows(r["retrain"]["rows"]),
    ]


def _class_agnostic_rows(r: dict[str, Any]) -> list[str]:
    reports = r["reports"]
    no_jitter, truth, frame, wide = (reports[k] for k in ("no-jitter", "surround", "frame", "surround-256"))
    by_name = {row["topology"]: row for row in no_jitter["topologies"]}
    wide_rows = {row["topology"]: row for row in wide["topologies"]}
    rows = [
        f"median of {no_jitter['median_ratio']:.3f} over the {no_jitter['runs']} runs (lowest "
        f"{no_jitter['lowest_ratio']:.3f})",
        f"mean seed sd of AP {no_jitter['mean_sd_AP']:.3f}, of class-agnostic AP "
        f"{no_jitter['mean_sd_AP_agnostic']:.3f}",
        f"FC-FPN's seed 1 finds no box at all; QuFPN's seed 2 finds boxes at class-agnostic AP "
        f"{by_name['qufpn']['AP_agnostic'][2]:.3f}",
        f"(the surround recipe, {truth['runs']} runs) it is the same: median {truth['median_ratio']:.3f} (lowest "
        f"{truth['lowest_ratio']:.3f}), sd {truth['mean_sd_AP']:.3f} against {truth['mean_sd_AP_agnostic']:.3f}",
        f"(median {frame['median_ratio']:.3f}, lowest {frame['lowest_ratio']:.3f}, {frame['runs']} runs)",
        f"AP / class-agnostic AP {wide['median_ratio']:.3f} (median)",
        *(
            f"{label} {wide_rows[name]['mean_AP']:.3f} / {wide_rows[name]['mean_AP_agnostic']:.3f}"
            for name, label in (("nofusion", "the control"), ("fpn", "FPN"), ("bifpn", "BiFPN"))
        ),
    ]
    assert by_name["fc_fpn"]["AP_agnostic"][1] < 0.01, "FC-FPN's seed 1 finds no box"
    for row in no_jitter["topologies"]:
        rows.append(
            f"| {row['topology']} | {row['mean_AP']:.3f} | {row['sd_AP']:.3f} | {row['mean_AP_agnostic']:.3f} "
            f"| {row['sd_AP_agnostic']:.3f} |"
        )
    return rows


def _receptive_field_rows(r: dict[str, Any]) -> list[str]:
    rows = {row["topology"]: row for row in r["rows"]}
    control = rows.pop("nofusion")
    p3 = sorted(row["r90_px_trained"][0] for row in rows.values())
    assert {row["extent_px"][0] for row in r["rows"]} == {r["image_size"]}, "every P3 sees the whole image"
    return [
        f"at the recipe's {r['image_size']} px",
        f"(P3 extent {r['image_size']} px)",
        f"{100 * r['mass']:.0f}% of the control's P3 gradient lies within {control['r90_px_trained'][0]:.1f} px "
        "of the cell (the trained seed-0 run; "
        f"{control['r90_px_init'][0]:.1f} px at initialisation), the fusing topologies' within "
        f"{p3[0]:.1f}-{p3[-1]:.1f} px",
    ]


def _receptive_field_wide_rows(r: dict[str, Any]) -> list[str]:
    rows = {row["topology"]: row for row in r["rows"]}
    return [
        f"the surround scene at {r['image_size']} px",
        f"the control's P3 still has gradient from a {rows['nofusion']['extent_px'][0]} px square, but 90% of it "
        f"lies within {rows['nofusion']['r90_px_trained'][0]:.1f} px",
        f"within {rows['fpn']['r90_px_trained'][0]:.1f} px (FPN) and {rows['bifpn']['r90_px_trained'][0]:.1f} px "
        "(BiFPN)",
    ]


#: results file -> the README text (table rows, phrases) its values give
#: The recipes of the scales ground truth whose stored runs docs/ground-truth.md lists.
SCALES_RECIPES = ("scales", "scales-3000")


def _scales_rows(r: dict[str, Any]) -> list[str]:
    """The stored runs of the scales recipes (``ranking.json``), one table row each."""
    return [
        f"| {run['topology']} | {run['recipe']['name']} | {run['seed']} | {run['metrics']['AP']:.3f} "
        f"| {run['metrics']['APs']:.3f} | {run['metrics']['APl']:.3f} | {run['seconds'] / 60:.1f} |"
        for run in r["runs"]
        if run["recipe"]["name"] in SCALES_RECIPES
    ]


FIGURES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "ranking.json": _scales_rows,
    "feature_network.json": _feature_network_rows,
    "detector.json": _detector_rows,
    "search.json": _search_rows,
    "train_loop.json": _train_loop_rows,
    "frozen_backbone.json": _frozen_backbone_rows,
    "train_step.json": _train_step_rows,
    "ranking_report-beacon-lr008.json": _beacon_rows("beacon-lr008", _ranking_rows),
    "ranking_report-surround.json": _ranking_rows,
    "ranking_report-no-jitter.json": _ground_truth_rows,
    "ranking_report-warmup.json": _warmup_rows,
    "ranking_report-beacon.json": _beacon_rows("beacon"),
    "ranking_report-lr012-val1600.json": _beacon_rows("lr012-val1600"),
    "ranking_report-fixed-init.json": lambda r: [*_beacon_rows("fixed-init", _ranking_rows)(r), *_resolvable_rows(r)],
    "variance.json": _variance_rows,
    "verify.json": _verify_rows,
    "class_agnostic.json": _class_agnostic_rows,
    "receptive_field.json": _receptive_field_rows,
    "receptive_field-surround-256.json": _receptive_field_wide_rows,
    "oneshot.json": _oneshot_rows,
    "oneshot_search.json": _oneshot_search_rows,
    "compare_seeds.json": _compare_seeds_rows,
}


def _flat(text: str) -> str:
    """``text`` with every run of white space one space, as a rendered page shows it."""
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_benchmark_figures_are_the_stored_results(name):
    for text in FIGURES[name](_load(name)):
        assert _flat(text) in _flat(BENCHMARKS), f"{BENCHMARK_FILES} lack, from {name}: {text}"


def _tables(text: str) -> list[list[str]]:
    """The rows of every markdown table of ``text``, header and rule left out."""
    tables = re.findall(r"^\|.*?(?=^[^|]|\Z)", text, re.MULTILINE | re.DOTALL)
    return [table.strip().splitlines()[2:] for table in tables]


def test_every_benchmark_table_row_is_backed():
    backed = {row for row in _backed() if row.startswith("| ")}
    rows = [
        (page, row)
        for page, text in PAGES.items()
        if page not in REFERENCE_PAGES
        for table in _tables(text)
        for row in table
        if re.search(r"\d", row)
    ]
    assert [f"{page}: {row}" for page, row in rows if row not in backed] == []


def test_the_compile_table_shows_every_spec_measured():
    r = _load("feature_network.json")
    table = _tables(PAGES["docs/benchmarks.md"][PAGES["docs/benchmarks.md"].index("| spec | compile") :])[0]
    assert table == [_compile_row(row) for row in r["compile"]]


def test_the_commands_said_to_take_device_take_it():
    listed = re.search(r"`--device` \(([^)]*)\)", TEXT)
    assert listed, "README.md documents --device"
    commands = re.findall(r"`([a-z-]+)`", listed.group(1))
    subcommands = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert commands and [c for c in commands if "--device" not in subcommands[c]._option_string_actions] == []


def _cpu_example_figures(r: dict[str, Any]) -> list[str]:
    return [
        f"**val AP {r['AP']:.3f}, AP50 {r['AP50']:.3f}, AP75 {r['AP75']:.3f} in {r['minutes']:.1f} minutes**",
        f"{r['images_per_s']:.1f} training images/s",
        f"{r['steps']:,} steps of {r['recipe']['batch_size']} images",
    ]


def test_the_cpu_example_figures_are_its_recorded_run():
    for text in _cpu_example_figures(_load("train_synthetic.json")):
        assert _flat(text) in _flat(BENCHMARKS), f"{BENCHMARK_FILES} lack, from train_synthetic.json: {text}"


def _quick_start() -> str:
    return TEXT[TEXT.index("## Quick start") : TEXT.index("## Commands")]


def _quick_start_figures(r: dict[str, Any]) -> list[str]:
    seeds = r["seeds"]
    order = "within noise" if r["first_within_noise_of_second"] else "outside the noise"
    return [
        f"{r['wall_s'] / 60:.1f} minutes",
        f"best: trial {r['best']['trial']} (AP {r['best']['AP']:.3f})",
        f"best trial {r['best']['trial']}: AP {r['best']['AP']:.3f}",
        f"AP {seeds['mean']:.3f} with a standard deviation of {seeds['sd']:.3f} over {len(seeds['aps'])} seeds",
        f"±{seeds['noise_band']:.3f}",
        f"spread over {r['spread']:.3f}",
        f"{r['gap_first_second']:.3f} apart: {order}",
    ]


def test_the_quick_start_figures_are_its_measured_run():
    r = _load("quickstart.json")
    quick_start = _quick_start()
    for line in r["printed"]:
        assert line in quick_start, f"README.md's Quick start lacks the leaderboard line, from quickstart.json: {line}"
    for text in _quick_start_figures(r):
        assert _flat(text) in _flat(quick_start), f"README.md lacks, from quickstart.json: {text}"


@functools.cache
def _printed(*argv: str) -> str:
    """What ``effdet-graph ARGV`` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


def _build_example() -> list[str]:
    """The lines of the README's example of ``build``'s output, the elided ``...`` left out."""
    block = FENCE.search(TEXT, TEXT.index("`build` on a spec prints"))
    assert block and block.group(1) == ""
    return [line for line in block.group(2).splitlines() if line.strip() != "..."]


def test_the_build_example_is_what_build_prints(one_torch_thread):
    printed = {_flat(line) for line in _printed("build", str(ROOT / "specs" / "bifpn.yaml")).splitlines()}
    assert [line for line in _build_example() if _flat(line) not in printed] == []


def _detector_figures() -> list[str]:
    """What ``build --detector`` counts for D0 and D7x, and the cost model for NAS-FPN on ResNet-50's channels."""
    from graphspec import load_spec
    from graphspec.cost import estimate_cost

    d0, d7x = (
        json.loads(_printed("build", str(ROOT / "specs" / spec), "--detector", "--phi", phi, "--json"))
        for spec, phi in (("bifpn.yaml", "0"), ("bifpn_p3p8.yaml", "8"))
    )
    nasfpn = estimate_cost(load_spec(ROOT / "specs" / "nasfpn.yaml"), in_channels=[512, 1024, 2048], image_size=640)
    return [
        f"D0 is {d0['params']:,} parameters and {d0['macs'] / 1e9:.2f} GMACs",
        f"D7x (`specs/bifpn_p3p8.yaml`, phi 8) is {d7x['params'] / 1e6:.1f} M and {d7x['macs'] / 1e9:.0f} GMACs",
        f"NAS-FPN at its published size is {nasfpn.total.params / 1e6:.2f} M parameters",
    ]


def test_the_detector_figures_are_what_build_counts(one_torch_thread):
    for text in _detector_figures():
        assert _flat(text) in _flat(TEXT), f"README.md lacks: {text}"


def _builtin_rows() -> list[str]:
    """The built-in topologies table's rows, as ``effdet-graph list`` prints them."""
    rows = [line.split() for line in _printed("list").splitlines()[2:]]
    return [f"| {' | '.join(words[:6])} |" for words in rows if len(words) >= 6 and words[1].isdigit()]


def _headline_rows() -> list[str]:
    """The README's table of results, each row from its results file."""
    network, detector, search, quick, cpu, truth, oneshot = map(
        _load,
        (
            "feature_network.json",
            "detector.json",
            "search.json",
            "quickstart.json",
            "train_synthetic.json",
            "ranking_report-fixed-init.json",
            "oneshot_search.json",
        ),
    )
    overhead = [100 * o["overhead_fraction"] for engines in search["overhead"].values() for o in engines.values()]
    ratios = [f["ratio"] for f in search["filtering"].values()]
    every, edges = truth["families"]["all"], truth["families"]["bifpn_edges"]
    targets = oneshot["targets"]
    best = next(row for row in oneshot["retrain"]["rows"] if row["spec"] == targets["best_trial"])
    noise = "within noise" if targets["template"] in best["within_noise_of"] else "outside the noise"
    bench = "docs/benchmarks.md"
    return [
        f"| BiFPN D0 feature network, CPU forward, ours / effdet's | **{network['latency']['ratio_ours_effdet']:.2f}** "
        f"of the time | [benchmarks]({bench}#the-feature-network) |",
        f"| EfficientDet-D0 on the CPU, ours / effdet's | eval forward **{detector['forward_b1_ms']['ratio']:.2f}**, "
        f"training step **{detector['train_step_b4_ms']['ratio']:.2f}** of the time "
        f"| [benchmarks]({bench}#the-whole-detector) |",
        f"| cost model against building and counting, per search space | {min(ratios):.0f}× to {max(ratios):.0f}× "
        f"faster | [benchmarks]({bench}#search-overhead-and-cost-model-filtering) |",
        f"| search overhead beside training, smoke-test budget | {min(overhead):.1f} % to {max(overhead):.1f} % "
        f"of the wall time | [benchmarks]({bench}#search-overhead-and-cost-model-filtering) |",
        f"| the Quick start's search | best AP {quick['best']['AP']:.3f}; two runs of one candidate differ by up to "
        f"±{quick['seeds']['noise_band']:.3f} | [Quick start](#quick-start) |",
        f"| a detector from random weights on the CPU | val AP {cpu['AP']:.3f} in {cpu['minutes']:.1f} minutes "
        "| [training](docs/training.md#a-detector-from-random-weights-on-the-cpu) |",
        f"| ranking benchmark, {every['topologies']} topologies × {every['seeds']} seeds | a topology effect "
        f"(F {every['F']:.2f}, p {every['p']:.2g}); none within `bifpn_edges` (p {edges['p']:.2g}) "
        f"| [benchmarks]({bench}#the-ranking-benchmark-does-the-topology-matter), "
        "[ranking study](docs/ranking-study.md) |",
        f"| one-shot search on the benchmark's space, winners retrained | best trial AP "
        f"{targets['best_trial_mean_ap']:.3f} against BiFPN's {targets['template_mean_ap']:.3f}, {noise} "
        "| [ranking study](docs/ranking-study.md#the-one-shot-search-on-the-benchmark-and-its-winners-retrained) |",
    ]


def test_the_results_table_is_the_stored_results():
    table = _tables(TEXT[TEXT.index("## Results") :])[0]
    assert table == _headline_rows()


@functools.cache
def _backed(page: str | None = None) -> tuple[str, ...]:
    """Every text a check here derives from a results file or from a command it runs, and checks on ``page``
    (the README's Quick start figures on the README only; the others on every page)."""
    quick_start = _load("quickstart.json")
    return (
        *(text for name, rows in FIGURES.items() for text in rows(_load(name))),
        *_cpu_example_figures(_load("train_synthetic.json")),
        *_build_example(),
        *_detector_figures(),
        *_builtin_rows(),
        *_headline_rows(),
        *((*quick_start["printed"], *_quick_start_figures(quick_start)) if page == "README.md" else ()),
    )


#: Figures that are settings, constants or cited facts, not measurements: each names its figure with enough
#: context to say so, and every one must be found on a page.
STATED = (
    "(95%: 1.96·√2·sd)",  # the Quick start's noise band: a 95% interval's z
    "paper: 3.9 M, 2.54 B",  # the EfficientDet paper's D0
    "paper: 77.0 M, 410 B",  # and D7x
    "gives the published 60.3 M",  # the NAS-FPN paper's RetinaNet
    "a 95% bootstrap interval",  # eval's interval
    "the 2.5th to 97.5th percentile",
    "scale jitter 0.1-2.0",  # compare's default scale range
    "heartbeat has been silent 15 s",  # the Optuna engine's grace period
    "a 2x downsample",  # the spec language's derived levels
    "The tint's share of a pixel is 0.2, 0.35 or 0.5",  # the scales scene's grades
)
#: A figure is a setting when the words before it say so: a hyperparameter, a bound, a version, a model's name.
SETTING = re.compile(
    r"(?:\blr|[αγδ]|momentum|weight decay|decay|atol|Python|YAML|Section|IoU|[≥≤<>=]|at least|at most)\s?$"
    r"|MobileNetV\d-$"
)
#: a number as written: thousands commas, a decimal part, an exponent
NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)*(?:e[-+]?\d+)?")
#: what makes a whole number a measurement: a time, a percentage, a size, a ratio ("9×", not "128×128")
UNIT = re.compile(r"\s?(?:ms|s|seconds?|min|minutes?|hours?|%|MB|GB|[×x](?!\s?\d))(?!\w)")
#: fenced blocks whose figures are not measurements (commands, code, spec files), or which another test runs
UNREAD_FENCES = ("bash", "python", "yaml")
SPEC_DOC_FENCES = ("console", "text")  # tests/graphspec/test_docs_examples.py and test_validation.py check these


def _unread(page: str, text: str) -> list[bool]:
    """Per character of ``text``: inside code (a fenced block of :data:`UNREAD_FENCES`, or a code span)."""
    code = [False] * len(text)
    spans, rest, last = [], [], 0
    for m in FENCE.finditer(text):
        kind = m.group(1).split()[0] if m.group(1).strip() else ""
        if kind in UNREAD_FENCES or (page == SPEC_DOC and kind in SPEC_DOC_FENCES):
            spans.append((m.start(), m.end()))
        rest.append((last, m.start()))
        last = m.end()
    rest.append((last, len(text)))
    for start, end in rest:
        spans += [(start + s.start(), start + s.end()) for s in re.finditer(r"`[^`]+`", text[start:end])]
    for start, end in spans:
        code[start:end] = [True] * (end - start)
    return code


def _unbacked_figures(page: str, text: str, backed: tuple[str, ...]) -> list[str]:
    """``PAGE:LINE: figure in context`` for every measured figure of ``text`` that no text of ``backed`` (nor of
    :data:`STATED`) covers where it stands."""
    code = _unread(page, text)
    flat, line_of, unread = [], [], []
    line = 1
    for char, in_code in zip(text, code):
        if char.isspace():
            if flat and flat[-1] != " ":
                flat.append(" ")
                line_of.append(line)
                unread.append(in_code)
            line += char == "\n"
            continue
        flat.append(char)
        line_of.append(line)
        unread.append(in_code)
    page_text = "".join(flat)
    covered = [False] * len(page_text)
    for phrase in {_flat(text) for text in (*backed, *STATED)}:
        start = page_text.find(phrase)
        while start >= 0:
            covered[start : start + len(phrase)] = [True] * len(phrase)
            start = page_text.find(phrase, start + 1)
    found = []
    for m in NUMBER.finditer(page_text):
        number = m.group(0)
        if number.count(".") > 1 or unread[m.start()] or all(covered[m.start() : m.end()]):
            continue  # a version, code, or backed
        if "." not in number and "e" not in number and not UNIT.match(page_text, m.end()):
            continue  # a count, a size, a step number
        if SETTING.search(page_text[max(0, m.start() - 20) : m.start()]):
            continue
        found.append(f"{page}:{line_of[m.start()]}: {number} in '{page_text[max(0, m.start() - 40) : m.end() + 20]}'")
    return found


def test_every_figure_is_backed():
    """Every measured figure of the README and docs/ is a figure a check here takes from a results file or a
    command it runs (or a setting, :data:`STATED`)."""
    unbacked = [finding for page, text in PAGES.items() for finding in _unbacked_figures(page, text, _backed(page))]
    assert unbacked == [], "figures that no results file or command backs:\n" + "\n".join(unbacked)


def test_every_stated_figure_is_on_a_page():
    pages = _flat(BENCHMARKS)
    assert [phrase for phrase in STATED if _flat(phrase) not in pages] == []


def test_the_figure_check_finds_an_invented_figure():
    text = "Trained at lr 0.12 on MobileNetV2-0.5: AP 0.123, AP 0.084 in 3.5 minutes, 15 s a trial, 1.8x, 12 %."
    found = _unbacked_figures("invented.md", text, backed=("AP 0.084",))
    assert [f.split(": ")[1].split(" in ")[0] for f in found] == ["0.123", "3.5", "15", "1.8", "12"]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_leads_to_a_page_and_heading():
    broken = []
    for page, text in PAGES.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            name = str((ROOT / page).parent.joinpath(path).resolve().relative_to(ROOT)) if path else page
            if name not in PAGES and not (ROOT / name).exists():
                broken.append(f"{page}: {target}")
            elif anchor and anchor not in {_anchor(h) for h in re.findall(r"^#+ (.*)$", PAGES.get(name, ""), re.M)}:
                broken.append(f"{page}: {target}")
    assert broken == []


def test_the_package_map_names_every_folder():
    """Every top-level folder of the repository, and every subpackage of ``search/``, is in the package map."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if tracked.returncode:
        pytest.skip("not a git checkout")
    folders = {line.split("/")[0] for line in tracked.stdout.splitlines() if "/" in line}
    search = {path.parent.name for path in (ROOT / "search").glob("*/__init__.py")}
    package_map = TEXT[TEXT.index("## Package map") : TEXT.index("## Documentation")]
    assert sorted(f"{name}/" for name in folders | search if f"`{name}/`" not in package_map) == []


def test_every_docs_page_is_linked_from_the_readme():
    assert [page for page in PAGES if page != "README.md" and f"]({page})" not in TEXT] == []
