"""What a user waits for around the calls: whole `llmflow` processes against `import mlflow`.

In one run, N interleaved repetitions (the order rotates each time) of whole processes, each
timed from start to exit (wall, and CPU of the process tree):

    python -c "import mlflow"                 the yardstick every ratio is taken against
    llmflow --help, and every subcommand's --help
    llmflow run FILE --no-cache               one call to the fake OpenAI-compatible server
                                              (tests/fakes), report on, a fresh sqlite store
    llmflow compare -e NAME                   on that run's store

Prints median [min-max] per case, its ratio to `import mlflow`, and the goals of issue 16:
a 1-call run at most 2x `import mlflow`, compare at most 1.3x, every --help under 0.3 s.

    python bench/startup.py [--reps 3] [--json results.json]

Run it from the project root with the project's venv; `PYTHONPATH=$PWD/src:$PWD` to measure a
source tree over an installed llmflow.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "startup-bench"
BASE = "import mlflow"
HELP_LIMIT_S = 0.3
RATIO_GOALS = {"llmflow run (1 call)": 2.0, "llmflow compare": 1.3}


@dataclass
class Case:
    name: str
    argv: list[str]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


def llmflow_command() -> list[str]:
    """The console script beside this interpreter, as a user would type it; else the module."""
    script = Path(sys.executable).parent / "llmflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "llmflow.cli"]


def help_commands() -> list[list[str]]:
    """[] for `llmflow --help`, then every command and subcommand path, read from the app."""
    import typer.main

    from llmflow.cli import app

    paths: list[list[str]] = [[]]

    def walk(group, prefix: list[str]) -> None:
        for name, command in sorted(getattr(group, "commands", {}).items()):
            paths.append([*prefix, name])
            walk(command, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


@contextmanager
def fake_openai() -> Iterator[str]:
    """The fake OpenAI-compatible server of the tests, in its own process; its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "openai"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait()


def experiment_file(directory: Path, url: str) -> Path:
    document = {
        "experiment": EXPERIMENT,
        "prompts": [{"id": "p0", "user": "Say something short."}],
        "cache": False,
        "report": True,
        "models": [
            {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{url}/v1"},
        ],
    }
    path = directory / "startup.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the process and the children it waited for) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cases(directory: Path, url: str) -> list[Case]:
    llmflow = llmflow_command()
    store = "{store}"  # a fresh sqlite store for every repetition
    path = experiment_file(directory, url)
    found = [Case(BASE, [sys.executable, "-c", "import mlflow"])]
    for words in help_commands():
        found.append(Case(" ".join(["llmflow", *words, "--help"]), [*llmflow, *words, "--help"]))
    run = [*llmflow, "run", str(path), "--no-cache", "--tracking-uri", store]
    found.append(Case("llmflow run (1 call)", run))
    compare = [*llmflow, "compare", "-e", EXPERIMENT, "--tracking-uri", store]
    found.append(Case("llmflow compare", compare))
    return found


def measure(reps: int, directory: Path, url: str) -> list[Case]:
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"}
    env.pop("MLFLOW_TRACKING_URI", None)
    all_cases = cases(directory, url)
    # compare needs a run first: it stays after `run` in every rotation
    movable, tail = all_cases[:-2], all_cases[-2:]
    for rep in range(reps):
        shift = rep % len(movable)
        store = f"sqlite:///{directory / f'mlflow-{rep}.db'}"
        for case in [*movable[shift:], *movable[:shift], *tail]:
            argv = [word.replace("{store}", store) for word in case.argv]
            wall, cpu = timed(argv, directory, env)
            case.walls.append(wall)
            case.cpus.append(cpu)
            print(f"  rep {rep + 1}: {case.name:34s} {wall:6.2f} s", file=sys.stderr, flush=True)
    return all_cases


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def verdict(case: Case, base: float) -> tuple[str, str]:
    """The goal of a case and whether its median meets it."""
    median = statistics.median(case.walls)
    if case.name.endswith("--help"):
        return f"< {HELP_LIMIT_S} s", "ok" if median < HELP_LIMIT_S else "MISSED"
    goal = RATIO_GOALS.get(case.name)
    if goal is None:
        return "", ""
    return f"<= {goal}x", "ok" if median / base <= goal else "MISSED"


def print_table(found: list[Case]) -> None:
    """Wall and CPU ratios both: on a busy machine the CPU seconds are the steadier of the two."""
    base = statistics.median(found[0].walls)
    base_cpu = statistics.median(found[0].cpus)
    print(
        f"\n{'whole process':32s} {'wall s, median [min-max]':25s} {'x mlflow':>8s} "
        f"{'CPU s':>6s} {'x mlflow':>8s}  goal (wall)"
    )
    for case in found:
        goal, status = verdict(case, base)
        ratio = statistics.median(case.walls) / base
        cpu = statistics.median(case.cpus)
        print(
            f"{case.name:32s} {spread(case.walls):25s} {ratio:8.2f} {cpu:6.2f} "
            f"{cpu / base_cpu:8.2f}  {goal} {status}".rstrip()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp, fake_openai() as url:
        found = measure(args.reps, Path(tmp), url)
    print_table(found)
    if args.json:
        rows = [{"case": c.name, "wall_s": c.walls, "cpu_s": c.cpus} for c in found]
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
