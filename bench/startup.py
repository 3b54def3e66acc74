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

    python bench/startup.py [--reps 3] [--json results.json] [--tree DIR --tree DIR2]

Run it from the project root with the project's venv; `PYTHONPATH=$PWD/src:$PWD` to measure a
source tree over an installed llmflow. With --tree (repeatable), the llmflow cases run once per
source tree in every repetition (DIR/src first on PYTHONPATH), for a before/after in one run:
`git worktree add /tmp/before HEAD~3` then `--tree /tmp/before --tree .`.
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
RATIO_GOALS = {"run": 2.0, "compare": 1.3}


@dataclass
class Case:
    name: str
    kind: str  # base, help, run, compare: what its goal is
    argv: list[str]
    pythonpath: str | None = None  # the source tree measured, when not the current one
    tree: int = 0  # its index: each tree's run gets its own store
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


def cases(directory: Path, url: str, trees: list[Path]) -> list[Case]:
    """`import mlflow`, then the llmflow cases of each tree; run and compare last, in order."""
    llmflow = llmflow_command()
    path = experiment_file(directory, url)
    found = [Case(BASE, "base", [sys.executable, "-c", "import mlflow"])]
    tail = []
    for index, tree in enumerate(trees or [None]):
        label, pythonpath = "", None
        if tree is not None:
            label, pythonpath = f" [{tree.resolve().name}]", f"{tree.resolve() / 'src'}:{ROOT}"
        for words in help_commands():
            argv = [*llmflow, *words, "--help"]
            name = " ".join(["llmflow", *words, "--help"]) + label
            found.append(Case(name, "help", argv, pythonpath))
        store = "{store}"  # a fresh sqlite store per repetition and tree
        run = [*llmflow, "run", str(path), "--no-cache", "--tracking-uri", store]
        compare = [*llmflow, "compare", "-e", EXPERIMENT, "--tracking-uri", store]
        tail.append(
            (
                Case("llmflow run (1 call)" + label, "run", run, pythonpath, index),
                Case("llmflow compare" + label, "compare", compare, pythonpath, index),
            )
        )
    return found + [case for pair in tail for case in pair]


def measure(reps: int, directory: Path, url: str, trees: list[Path]) -> list[Case]:
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"}
    env.pop("MLFLOW_TRACKING_URI", None)
    all_cases = cases(directory, url, trees)
    # compare needs its run first: the (run, compare) pairs come last, alternated
    n_pairs = max(len(trees), 1)
    movable, tail = all_cases[: -2 * n_pairs], all_cases[-2 * n_pairs :]
    for rep in range(reps):
        shift = rep % len(movable)
        pairs = [tail[i : i + 2] for i in range(0, len(tail), 2)]
        pairs = pairs[rep % n_pairs :] + pairs[: rep % n_pairs]
        for case in [*movable[shift:], *movable[:shift], *(c for pair in pairs for c in pair)]:
            store = f"sqlite:///{directory / f'mlflow-{rep}-{case.tree}.db'}"
            argv = [word.replace("{store}", store) for word in case.argv]
            run_env = env if case.pythonpath is None else {**env, "PYTHONPATH": case.pythonpath}
            wall, cpu = timed(argv, directory, run_env)
            case.walls.append(wall)
            case.cpus.append(cpu)
            print(f"  rep {rep + 1}: {case.name:44s} {wall:6.2f} s", file=sys.stderr, flush=True)
    return all_cases


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def verdict(case: Case, base: float) -> tuple[str, str]:
    """The goal of a case and whether its median meets it."""
    median = statistics.median(case.walls)
    if case.kind == "help":
        return f"< {HELP_LIMIT_S} s", "ok" if median < HELP_LIMIT_S else "MISSED"
    goal = RATIO_GOALS.get(case.kind)
    if goal is None:
        return "", ""
    return f"<= {goal}x", "ok" if median / base <= goal else "MISSED"


def print_table(found: list[Case]) -> None:
    """Wall and CPU ratios both: on a busy machine the CPU seconds are the steadier of the two."""
    base = statistics.median(found[0].walls)
    base_cpu = statistics.median(found[0].cpus)
    print(
        f"\n{'whole process':42s} {'wall s, median [min-max]':25s} {'x mlflow':>8s} "
        f"{'CPU s':>6s} {'x mlflow':>8s}  goal (wall)"
    )
    for case in found:
        goal, status = verdict(case, base)
        ratio = statistics.median(case.walls) / base
        cpu = statistics.median(case.cpus)
        print(
            f"{case.name:42s} {spread(case.walls):25s} {ratio:8.2f} {cpu:6.2f} "
            f"{cpu / base_cpu:8.2f}  {goal} {status}".rstrip()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--tree", type=Path, action="append", default=[], help="a source tree to measure"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp, fake_openai() as url:
        found = measure(args.reps, Path(tmp), url, args.tree)
    print_table(found)
    if args.json:
        rows = [{"case": c.name, "wall_s": c.walls, "cpu_s": c.cpus} for c in found]
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
