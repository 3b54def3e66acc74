"""What quality checks cost: `run_experiment` on N calls against the fake OpenAI-compatible
server (its own process, 0 ms answers), without checks and with five deterministic scorers
(each score also written as an assessment on its trace), alternating; the same as whole
`llmflow run` processes (their imports included; also their CPU seconds and peak memory, the
trace writer's included); then whole `llmflow score` processes on the
scored run (the stored answers read back, scored again with changed checks, assessments,
metrics, calls.json and the comparison rewritten).

    python bench/quality.py [--calls 1000] [--concurrency 16] [--rounds 2]
        [--tracking-uri http://127.0.0.1:5000 | --start-server]

With a server (--start-server: PostgreSQL and `mlflow server` started here, as in
bench/throughput.py), the in-process runs into it as well: a run's scores go to a server with
its traces, one request per scored trace.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import server_from_args, start_fake, timed_llmflow, whole_run  # noqa: E402

SCORERS = [
    {"type": "not-empty"},
    {"type": "icontains", "value": "prompt"},
    {"type": "regex", "value": "^Echo"},
    {"type": "length", "max": 200},
    {"type": "rouge-l", "threshold": 0.3},
]


def experiment_file(directory: Path, url: str, n: int, concurrency: int, scorers: list) -> Path:
    document = {
        "experiment": "quality-bench",
        "prompts": [
            {"id": f"p{i}", "user": f"Prompt number {i}", "expected": f"Echo: Prompt number {i}"}
            for i in range(n)
        ],
        "concurrency": concurrency,
        "report": False,
        "models": [
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": f"{url}/v1",
                "max_retries": 0,
            }
        ],
    }
    if scorers:
        document["scorers"] = scorers
    path = directory / f"quality-{len(scorers)}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tracking-uri", help="an `mlflow server` to measure too (http://...)")
    parser.add_argument(
        "--start-server",
        action="store_true",
        help="start PostgreSQL and an `mlflow server` on it here, measure it too, stop them",
    )
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory() as tmp, server_from_args(args, Path(tmp)) as server_uri:
        directory = Path(tmp)
        fake, url = start_fake(0.0)
        try:
            # untimed, before the timed files are written (it has the name of one): the first
            # run pays for starting the trace writer and the imports
            timed_llmflow(experiment_file(directory, url, 20, args.concurrency, SCORERS), directory)
            plain = experiment_file(directory, url, args.calls, args.concurrency, [])
            checked = experiment_file(directory, url, args.calls, args.concurrency, SCORERS)
            stores: list[Path] = []  # one per scored run; `llmflow score` takes the last

            def scored_run() -> float:
                stores.append(directory / f"scored-{len(stores)}.db")
                return timed_llmflow(checked, directory, stores[-1])[0]

            times = alternated(
                args.rounds,
                {"no checks": lambda: timed_llmflow(plain, directory)[0], "5 scorers": scored_run},
            )
            processes = alternated(
                args.rounds,
                {
                    "no checks": lambda: whole_run(plain, directory),
                    "5 scorers": lambda: whole_run(checked, directory),
                },
            )
            for label, rounds in processes.items():
                times[f"{label}, whole process"] = [wall for wall, _, _ in rounds]
            if server_uri:
                times |= alternated(
                    args.rounds,
                    {
                        f"no checks, {INTO_SERVER}": lambda: timed_llmflow(
                            plain, directory, tracking_uri=server_uri
                        )[0],
                        f"5 scorers, {INTO_SERVER}": lambda: timed_llmflow(
                            checked, directory, tracking_uri=server_uri
                        )[0],
                    },
                )
            edited = [*SCORERS[:4], {"type": "chrf", "threshold": 0.3}]
            changed = experiment_file(directory, url, args.calls, args.concurrency, edited)
            rescore_s = {
                label: timed_score(stores[-1], changed, directory, label == "one changed")
                for label in ("one changed", "unchanged: nothing written")
            }
        finally:
            fake.terminate()
    print_table(args, times, processes, rescore_s)


INTO_SERVER = "into the server"


Measured = TypeVar("Measured")


def alternated(rounds: int, runs: dict[str, Callable[[], Measured]]) -> dict[str, list[Measured]]:
    """What each run measured, over the rounds; which goes first alternates, so that neither
    always runs after the other."""
    times: dict[str, list[Measured]] = {label: [] for label in runs}
    for round_ in range(rounds):
        for label, run in list(runs.items())[:: -1 if round_ % 2 else 1]:
            times[label].append(run())
    return times


def timed_score(store: Path, config: Path, directory: Path, writes: bool) -> float:
    """Wall time of one whole `llmflow score` process (its imports included) on the scored run."""
    command = [sys.executable, "-m", "llmflow.cli", "score", "-e", "quality-bench"]
    command += ["--config", str(config), "--tracking-uri", f"sqlite:///{store}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"llmflow score failed:\n{done.stderr[-2000:]}")
    if ("nothing changed" in done.stdout) == writes:
        raise SystemExit(f"llmflow score wrote the wrong thing:\n{done.stdout[-2000:]}")
    return elapsed


def print_table(
    args: argparse.Namespace,
    times: dict[str, list[float]],
    processes: dict[str, list[tuple[float, float, float]]],
    rescore_s: dict[str, float],
) -> None:
    """A markdown table, as in the README: the best round, every round (the noise), the goal."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{args.calls} calls, concurrency {args.concurrency}, best of {args.rounds} rounds; "
        f"{os.cpu_count()} CPUs, load average at the end {load}\n"
    )
    print("| | wall (best; change: best, medians) | every round | goal |")
    print("|---|---|---|---|")
    rows = []
    for where, what, goal in (
        ("", "`llmflow run`", "<= +5%"),
        (", whole process", "whole `llmflow run` process", ""),
        (f", {INTO_SERVER}", f"`llmflow run` {INTO_SERVER}", ""),
    ):
        if f"no checks{where}" not in times:
            continue
        plain, scored = times[f"no checks{where}"], times[f"5 scorers{where}"]
        best, middle = min(scored) / min(plain) - 1, median(scored) / median(plain) - 1
        rows.append((f"{what}, no checks", f"{min(plain):.2f} s", plain, ""))
        change = f"{min(scored):.2f} s ({best * 100:+.1f}%; medians {middle * 100:+.1f}%)"
        rows.append((f"{what}, 5 scorers", change, scored, goal))
    for label, t in rescore_s.items():
        rows.append(
            (
                f"`llmflow score`, {args.calls} calls, 5 scorers ({label})",
                f"{t:.2f} s",
                [t],
                "< 10 s",
            )
        )
    for name, best, every, goal in rows:
        print(f"| {name} | {best} | {', '.join(f'{t:.2f}' for t in every)} | {goal} |")
    print(
        "\n| whole `llmflow run` process | CPU s (median) | every round | peak MB, tree (median) |"
    )
    print("|---|---|---|---|")
    for label, rounds in processes.items():
        _, cpu, peak = zip(*rounds, strict=True)
        every = ", ".join(f"{c:.2f}" for c in cpu)
        print(f"| {label} | {median(cpu):.2f} | {every} | {median(peak):.0f} |")


if __name__ == "__main__":
    main()
