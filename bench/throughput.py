"""llmflow run versus a raw AsyncOpenAI loop, against the fake OpenAI-compatible server.

The fake server runs in its own process on 127.0.0.1 with a set delay per answer. In this
process, alternating: (a) raw: N streamed chat completions through AsyncOpenAI with a
semaphore of the same concurrency, nothing recorded; (b) llmflow: `run_experiment` on the same
N prompts with full MLflow logging (runs, metrics, tables, one trace per call) into a fresh
sqlite store. Then one `llmflow run` in a subprocess for its peak RSS.

    python bench/throughput.py [--calls 1000] [--concurrency 16] [--delays 0.1 0] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def start_fake(delay: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "openai", "--delay", str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = process.stdout.readline().strip()
    return process, url


async def raw(url: str, n: int, concurrency: int) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="no-key", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Prompt number {i}"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in stream:
                pass

    await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()


def experiment_file(directory: Path, url: str, n: int, concurrency: int) -> Path:
    document = {
        "experiment": "throughput",
        "prompts": [{"id": f"p{i}", "user": f"Prompt number {i}"} for i in range(n)],
        "concurrency": concurrency,
        "cache": False,
        "models": [
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": f"{url}/v1",
                "max_retries": 0,
            }
        ],
    }
    path = directory / "throughput.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def timed_llmflow(path: Path, directory: Path, store: Path | None = None) -> float:
    from llmflow.experiment import RunRequest, run_experiment

    db = store or directory / f"mlflow-{time.monotonic_ns()}.db"
    start = time.perf_counter()
    result = run_experiment(RunRequest(experiment_file=path, tracking_uri=f"sqlite:///{db}"))
    elapsed = time.perf_counter() - start
    assert result.n_failed_calls == 0 and result.traces_failed == 0, "the benchmark run failed"
    return elapsed


def peak_rss_mb(path: Path, directory: Path) -> float:
    """Peak RSS of a whole `llmflow run` process (the largest so far among children)."""
    db = directory / f"rss-{time.monotonic_ns()}.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmflow.cli",
            "run",
            str(path),
            "--tracking-uri",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        cwd=directory,
    )
    if done.returncode != 0:
        raise SystemExit(f"llmflow run failed:\n{done.stderr}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--delays", type=float, nargs="+", default=[0.1, 0.0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--reuse-store",
        action="store_true",
        help="log every llmflow round into one store created beforehand (no schema migrations "
        "in the timing, as for a user whose store already exists)",
    )
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        store = None
        if args.reuse_store:
            from llmflow.tracking.runs import RunStore

            store = directory / "shared.db"
            RunStore(f"sqlite:///{store}").check()  # creates the schema once, untimed
        for delay in args.delays:
            fake, url = start_fake(delay)
            try:
                path = experiment_file(directory, url, args.calls, args.concurrency)
                raw_times, our_times = [], []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    asyncio.run(raw(url, args.calls, args.concurrency))
                    raw_times.append(time.perf_counter() - start)
                    our_times.append(timed_llmflow(path, directory, store))
                rss = peak_rss_mb(path, directory)
            finally:
                fake.terminate()
            raw_best, ours_best = min(raw_times), min(our_times)
            rows.append((delay, raw_best, ours_best, rss))

    where = "one existing store" if args.reuse_store else "a fresh sqlite store per round"
    print(f"\n{args.calls} calls, concurrency {args.concurrency}, best of {args.rounds} rounds,")
    print(f"llmflow logging into {where}")
    print(
        f"{'delay':>6} {'raw s':>7} {'raw calls/s':>11} {'llmflow s':>9} "
        f"{'llmflow calls/s':>15} {'ratio':>6} {'llmflow peak RSS MB':>19}"
    )
    for delay, raw_s, ours_s, rss in rows:
        print(
            f"{delay:>6g} {raw_s:>7.2f} {args.calls / raw_s:>11.1f} {ours_s:>9.2f} "
            f"{args.calls / ours_s:>15.1f} {ours_s / raw_s:>6.2f} {rss:>19.0f}"
        )


if __name__ == "__main__":
    main()
