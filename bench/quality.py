"""What quality checks cost: `run_experiment` on N calls against the fake OpenAI-compatible
server (its own process, 0 ms answers), without checks and with five deterministic scorers
(each score also written as an assessment on its trace), alternating; the same as whole
`llmflow run` processes (their imports included); then whole `llmflow score` processes on the
scored run (the stored answers read back, scored again with changed checks, assessments,
metrics, calls.json and the comparison rewritten).

    python bench/quality.py [--calls 1000] [--concurrency 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import start_fake, timed_llmflow  # noqa: E402

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
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        fake, url = start_fake(0.0)
        try:
            # untimed, before the timed files are written (it has the name of one): the first
            # run pays for starting the trace writer and the imports
            timed_llmflow(experiment_file(directory, url, 20, args.concurrency, SCORERS), directory)
            plain = experiment_file(directory, url, args.calls, args.concurrency, [])
            checked = experiment_file(directory, url, args.calls, args.concurrency, SCORERS)
            times: dict[str, list[float]] = {"no checks": [], "5 scorers": []}
            store = directory / "scored.db"
            for round_ in range(args.rounds):
                # which goes first alternates, so that neither always runs after the other
                for label in ("no checks", "5 scorers")[:: -1 if round_ % 2 else 1]:
                    if label == "5 scorers":
                        store = directory / f"scored-{time.monotonic_ns()}.db"
                        times[label].append(timed_llmflow(checked, directory, store)[0])
                    else:
                        times[label].append(timed_llmflow(plain, directory)[0])
            for round_ in range(args.rounds):
                for label, path in (("no checks", plain), ("5 scorers", checked))[
                    :: -1 if round_ % 2 else 1
                ]:
                    times.setdefault(f"{label}, whole process", []).append(
                        timed_process(path, directory)
                    )
            edited = [*SCORERS[:4], {"type": "chrf", "threshold": 0.3}]
            changed = experiment_file(directory, url, args.calls, args.concurrency, edited)
            rescore_s = {
                label: timed_score(store, changed, directory, label == "one changed")
                for label in ("one changed", "unchanged: nothing written")
            }
        finally:
            fake.terminate()
    print_table(args, times, rescore_s)


def timed_process(path: Path, directory: Path) -> float:
    """Wall time of one whole `llmflow run` process into a fresh sqlite store."""
    store = f"sqlite:///{directory}/process-{time.monotonic_ns()}.db"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "llmflow.cli", "run", str(path), "--tracking-uri", store],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"llmflow run failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


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
    args: argparse.Namespace, times: dict[str, list[float]], rescore_s: dict[str, float]
) -> None:
    """A markdown table, as in the README: the best round, every round (the noise), the goal."""
    base, scored = min(times["no checks"]), min(times["5 scorers"])
    base_process = min(times["no checks, whole process"])
    scored_process = min(times["5 scorers, whole process"])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{args.calls} calls, concurrency {args.concurrency}, best of {args.rounds} rounds; "
        f"{os.cpu_count()} CPUs, load average at the end {load}\n"
    )
    print("| | wall (best) | every round | goal |")
    print("|---|---|---|---|")
    rows = [
        ("`llmflow run`, no checks", f"{base:.2f} s", times["no checks"], ""),
        (
            "`llmflow run`, 5 scorers",
            f"{scored:.2f} s ({(scored / base - 1) * 100:+.1f}%)",
            times["5 scorers"],
            "<= +5%",
        ),
        (
            "whole `llmflow run` process, no checks",
            f"{base_process:.2f} s",
            times["no checks, whole process"],
            "",
        ),
        (
            "whole `llmflow run` process, 5 scorers",
            f"{scored_process:.2f} s ({(scored_process / base_process - 1) * 100:+.1f}%)",
            times["5 scorers, whole process"],
            "",
        ),
        *(
            (
                f"`llmflow score`, {args.calls} calls, 5 scorers ({label})",
                f"{t:.2f} s",
                [t],
                "< 10 s",
            )
            for label, t in rescore_s.items()
        ),
    ]
    for name, best, every, goal in rows:
        print(f"| {name} | {best} | {', '.join(f'{t:.2f}' for t in every)} | {goal} |")


if __name__ == "__main__":
    main()
