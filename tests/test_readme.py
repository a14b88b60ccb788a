"""README.md stays true: its Python examples (and those of ``effdet_graph``'s docstring) run, its command
lines parse with the real parsers, its table of built-in topologies is what ``effdet-graph list`` prints, and
every benchmark figure it quotes is the value stored in ``benchmarks/results/*.json``.

Fenced blocks of README.md, by info string:
  ```python    run from the repository root, in one fresh namespace each
  ```bash      every ``effdet-graph ...`` command is parsed by ``effdet_graph.cli.make_parser()`` (with the
               ``search`` plugin its entry point registers), every ``python search/<script>.py ...`` by the
               script's own parser; a renamed command or flag fails here
"""

from __future__ import annotations

import argparse
import json
import re
import runpy
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from effdet_graph.cli import main, make_parser

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
#: Where the benchmarks' figures are written: the README's Benchmarks section and the ranking study's history.
BENCHMARK_FILES = "README.md and docs/ranking-study.md"
BENCHMARKS = TEXT[TEXT.index("## Benchmarks") : TEXT.index("## Development")] + (
    ROOT / "docs" / "ranking-study.md"
).read_text(encoding="utf-8")
RESULTS = ROOT / "benchmarks" / "results"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
BLOCKS = [(m.group(1).strip(), m.group(2), TEXT.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(TEXT)]
PYTHON = [(body, line) for info, body, line in BLOCKS if info == "python"]
PYTHON_PREFIX = re.compile(r"(\S*/)?python3?$")


def _commands() -> list[tuple[list[str], int]]:
    """Every command of the bash blocks, split at ``&&``, comments dropped, with its README line."""
    commands = []
    for info, body, first in BLOCKS:
        if info != "bash":
            continue
        for offset, text in enumerate(body.splitlines(), start=1):
            words: list[str] = []
            for word in [*shlex.split(text, comments=True), "&&"]:
                if word in ("&&", ";", "||"):
                    if words:
                        commands.append((words, first + offset))
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
CLI = [(cli, line) for argv, line in COMMANDS if (cli := _as_cli(argv)) is not None]
SCRIPTS = [
    (argv, line)
    for argv, line in COMMANDS
    if PYTHON_PREFIX.fullmatch(argv[0]) and len(argv) > 1 and argv[1].startswith("search/")
]


def test_the_readme_has_examples():
    assert len(PYTHON) >= 2 and len(CLI) >= 20 and SCRIPTS
    commands = {argv[1] for argv, _ in CLI}
    assert {"build", "list", "train", "eval", "predict", "compare", "search", "make-dataset"} <= commands


@pytest.mark.parametrize("body, line", PYTHON, ids=[f"line{line}" for _, line in PYTHON])
def test_python_blocks_run(body, line, monkeypatch, one_torch_thread):
    monkeypatch.chdir(ROOT)
    exec(compile(body, f"README.md:{line}", "exec"), {"__name__": "readme"})


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


@pytest.mark.parametrize("argv, line", CLI, ids=[f"line{line}" for _, line in CLI])
def test_cli_commands_parse(argv, line, capsys):
    parser = make_parser()
    args = _parse(lambda: parser.parse_args(argv[1:]), f"README.md:{line}: {shlex.join(argv)}", capsys)
    assert callable(args.run)


@pytest.mark.parametrize("argv, line", SCRIPTS, ids=[f"line{line}" for _, line in SCRIPTS])
def test_search_script_commands_parse(argv, line, monkeypatch, capsys):
    parsed = []
    monkeypatch.setattr("search.script.run_command", lambda run, args: parsed.append(args) or 0)
    monkeypatch.setattr(sys, "argv", argv[1:])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scripts drop their own folder from it
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / argv[1]), run_name="__main__")
    where = f"README.md:{line}: {shlex.join(argv)}"
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


def _feature_network_rows(r: dict[str, Any]) -> list[str]:
    compile_ms = {row["spec"]: row for row in r["compile"]}
    big, d0, cost, latency = compile_ms["bifpn w384 x8"], compile_ms["bifpn"], r["cost"], r["latency"]
    ours, effdet = latency["models"]["ours"], latency["models"]["effdet"]
    return [
        f"| compile BiFPN at width 384, 8 repeats (load + build) | {big['median_ms']:.0f} ms"
        f"{'' if big['ok'] else ' (not met)'} | < {big['target_ms']:.0f} ms |",
        f"| compile BiFPN D0 (load + build) | {d0['median_ms']:.0f} ms{'' if d0['ok'] else ' (not met)'} "
        f"| < {d0['target_ms']:.0f} ms |",
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
    (AP / class-agnostic AP at least 0.95, ``bench_class_agnostic.py``)."""
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
    """Each stored run made again (``bench_ranking.py --verify``), as the command printed it."""
    return [f"{v['topology']} seed {v['seed']}: stored AP {v['stored_ap']:.6f}, again {v['ap']:.6f}" for v in r["runs"]]


def _variance_rows(r: dict[str, Any]) -> list[str]:
    return [f"| {row['source']} | {row['mean']:.3f} | {row['sd']:.3f} |" for row in r["rows"]]


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


def _oneshot_search_rows(r: dict[str, Any]) -> list[str]:
    targets = r["targets"]
    return [
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
        f"lies within {control['r90_px_trained'][0]:.1f} px of the cell (the trained seed-0 run; "
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
FIGURES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
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


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_benchmark_figures_are_the_stored_results(name):
    for text in FIGURES[name](_load(name)):
        assert " ".join(text.split()) in " ".join(BENCHMARKS.split()), f"{BENCHMARK_FILES} lack, from {name}: {text}"


def test_every_benchmark_table_row_is_backed():
    benchmarks = BENCHMARKS
    backed = {row for name, rows in FIGURES.items() for row in rows(_load(name)) if row.startswith("| ")}
    rows = [line for line in benchmarks.splitlines() if line.startswith("| ") and re.search(r"\d", line)]
    header = re.compile(r"^\| (what|space|topology|method|source) ")
    assert [row for row in rows if not header.match(row) and row not in backed] == []


def test_the_commands_said_to_take_device_take_it():
    listed = re.search(r"`--device` \(([^)]*)\)", TEXT)
    assert listed, "README.md documents --device"
    commands = re.findall(r"`([a-z-]+)`", listed.group(1))
    subcommands = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert commands and [c for c in commands if "--device" not in subcommands[c]._option_string_actions] == []


def test_the_cpu_example_figures_are_its_recorded_run():
    r = _load("train_synthetic.json")
    for text in (
        f"**val AP {r['AP']:.3f}, AP50 {r['AP50']:.3f}, AP75 {r['AP75']:.3f} in {r['minutes']:.1f} minutes**",
        f"{r['images_per_s']:.1f} training images/s",
        f"{r['steps']:,} steps of {r['recipe']['batch_size']} images",
    ):
        assert " ".join(text.split()) in " ".join(TEXT.split()), f"README.md lacks, from train_synthetic.json: {text}"


def test_the_quick_start_figures_are_its_measured_run():
    r = _load("quickstart.json")
    seeds = r["seeds"]
    quick_start = TEXT[TEXT.index("## Quick start") : TEXT.index("## Using it")]
    for line in r["printed"]:
        assert line in quick_start, f"README.md's Quick start lacks the leaderboard line, from quickstart.json: {line}"
    order = "within noise" if r["first_within_noise_of_second"] else "outside the noise"
    for text in (
        f"{r['wall_s'] / 60:.1f} minutes",
        f"best trial {r['best']['trial']}: AP {r['best']['AP']:.3f}",
        f"AP {seeds['mean']:.3f} with a standard deviation of {seeds['sd']:.3f} over {len(seeds['aps'])} seeds",
        f"±{seeds['noise_band']:.3f}",
        f"spread over {r['spread']:.3f}",
        f"{r['gap_first_second']:.3f} apart: {order}",
    ):
        assert " ".join(text.split()) in " ".join(quick_start.split()), f"README.md lacks, from quickstart.json: {text}"
