"""llmflow run versus a raw AsyncOpenAI loop, against the fake OpenAI-compatible server.

The fake server runs in its own process on 127.0.0.1 with a set delay per answer. In this
process, alternating: (a) raw: N streamed chat completions through AsyncOpenAI with a
semaphore of the same concurrency, nothing recorded; (b) llmflow: `run_experiment` on the same
N prompts with full MLflow logging (runs, metrics, tables, one trace per call) into a fresh
sqlite store; both sides' per-call latencies are compared too. Then one whole `llmflow run`
process for its wall time and memory.

    python bench/throughput.py [--calls 1000] [--concurrency 16] [--delays 0.1 0] [--rounds 2]
        [--tracking-uri http://127.0.0.1:5000 | --start-server]

With --tracking-uri (an `mlflow server`) or --start-server (a PostgreSQL server and an
`mlflow server` on it, started here on 127.0.0.1 as the tests do, then stopped), each round also
runs llmflow logging into that server, and its ratio to raw is printed beside the sqlite one;
then the time of one `llmflow compare` process on the server's experiment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


async def raw(url: str, n: int, concurrency: int) -> list[float]:
    """The calls' latencies, timed as llmflow times them: request sent to last chunk."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="no-key", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float:
        async with slots:
            start = time.perf_counter()
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Prompt number {i}"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in stream:
                pass
            return time.perf_counter() - start

    latencies = await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return list(latencies)


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


def timed_llmflow(
    path: Path, directory: Path, store: Path | None = None, tracking_uri: str | None = None
) -> tuple[float, list[float]]:
    """Wall time of `run_experiment`, and the latencies it recorded."""
    from llmflow.experiment import RunRequest, run_experiment

    db = store or directory / f"mlflow-{time.monotonic_ns()}.db"
    uri = tracking_uri or f"sqlite:///{db}"
    start = time.perf_counter()
    result = run_experiment(RunRequest(experiment_file=path, tracking_uri=uri))
    elapsed = time.perf_counter() - start
    assert result.n_failed_calls == 0 and result.traces_failed == 0, "the benchmark run failed"
    records = [r for rs in result.records.values() for r in rs]
    return elapsed, [r.timing.latency_s for r in records if r.timing]


def measure_cli(path: Path, directory: Path) -> tuple[float, float, float | None]:
    """One whole `llmflow run` process (imports and trace-writer start included): its wall time,
    its peak RSS, and the peak of its RSS plus its trace writer's (see whole_run)."""
    wall, _, peak_sum = whole_run(path, directory)
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_rss, peak_sum or None


def whole_run(path: Path, directory: Path) -> tuple[float, float, float]:
    """One whole `llmflow run` process into a fresh sqlite store: its wall time, the CPU seconds
    of it and its trace writer, and the peak of their RSS summed, in MB (Linux /proc, read every
    20 ms; shared library pages count in both, so the sum is an upper bound)."""
    store = f"sqlite:///{directory}/cli-{time.monotonic_ns()}.db"
    errors = directory / "cli-stderr.txt"
    start = time.perf_counter()
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "llmflow.cli", "run", str(path), "--tracking-uri", store],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    cpu: dict[int, float] = {}  # the last reading of each process
    peak = 0.0
    while process.poll() is None:
        pids = [process.pid, *process_children(process.pid)]
        cpu |= {pid: seconds for pid in pids if (seconds := cpu_s(pid)) is not None}
        peak = max(peak, sum(mb for pid in pids if (mb := rss_mb(pid)) is not None))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"llmflow run failed:\n{errors.read_text()[-2000:]}")
    return wall, sum(cpu.values()), peak


def cpu_s(pid: int) -> float | None:
    """User and system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_children(pid: int) -> list[int]:
    """Every thread's children: the trace writer is started from a worker thread."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    try:
        return [int(child) for t in tasks for child in t.read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS:")), 0)
    return kb / 1024


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
    parser.add_argument("--tracking-uri", help="an `mlflow server` to measure too (http://...)")
    parser.add_argument(
        "--start-server",
        action="store_true",
        help="start PostgreSQL and an `mlflow server` on it here, measure it, stop them",
    )
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp, server_from_args(args, Path(tmp)) as server_uri:
        rows = measure(args, Path(tmp), server_uri)
        print_tables(args, rows)
        if server_uri:
            print_server(args, rows, server_uri, Path(tmp))


@contextlib.contextmanager
def server_from_args(args: argparse.Namespace, directory: Path) -> Iterator[str | None]:
    """--tracking-uri as given, or with --start-server PostgreSQL and `mlflow server` on it,
    stopped at the end; None without either."""
    if not args.start_server:
        yield args.tracking_uri
        return
    from tests.server.servers import MlflowServer, start_postgres

    postgres = start_postgres()
    root = directory / "mlflow-server"
    root.mkdir()
    server = MlflowServer(root, postgres.create_database("bench"), workers=4)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
        postgres.stop()


def measure(args: argparse.Namespace, directory: Path, server_uri: str | None) -> list[tuple]:
    rows = []
    store = None
    if args.reuse_store:
        from llmflow.tracking.runs import RunStore

        store = directory / "shared.db"
        RunStore(f"sqlite:///{store}").check()  # creates the schema once, untimed
    for delay in args.delays:
        fake, url = start_fake(delay)
        try:
            path = experiment_file(directory, url, args.calls, args.concurrency)
            raw_times, our_times, server_times, raw_latencies, our_latencies = [], [], [], [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                raw_latencies += asyncio.run(raw(url, args.calls, args.concurrency))
                raw_times.append(time.perf_counter() - start)
                elapsed, latencies = timed_llmflow(path, directory, store)
                our_times.append(elapsed)
                our_latencies += latencies
                if server_uri:
                    server_times.append(timed_llmflow(path, directory, None, server_uri)[0])
            cli = measure_cli(path, directory)
        finally:
            fake.terminate()
        best_server = min(server_times) if server_times else None
        rows.append(
            (delay, min(raw_times), min(our_times), raw_latencies, our_latencies, best_server, *cli)
        )
    return rows


def print_server(
    args: argparse.Namespace, rows: list[tuple], server_uri: str, directory: Path
) -> None:
    from llmflow.redact import redact_url

    print(f"\nllmflow logging into {redact_url(server_uri)} (best of {args.rounds}), beside sqlite")
    print(f"{'delay':>6} {'raw s':>6} {'server s':>8} {'server ratio':>12} {'sqlite ratio':>12}")
    for delay, raw_s, ours_s, _, _, server_s, *_ in rows:
        print(
            f"{delay:>6g} {raw_s:>6.2f} {server_s:>8.2f} {server_s / raw_s:>12.2f} "
            f"{ours_s / raw_s:>12.2f}"
        )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "llmflow.cli", "compare", "-e", "throughput", "-f", "json",
         "--tracking-uri", server_uri],
        cwd=directory, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"llmflow compare failed:\n{done.stderr}")
    print(f"\none `llmflow compare` process on the server's experiment: {elapsed:.2f} s")


def print_tables(args: argparse.Namespace, rows: list[tuple]) -> None:
    where = "one existing store" if args.reuse_store else "a fresh sqlite store per round"
    print(f"\n{args.calls} calls, concurrency {args.concurrency}, best of {args.rounds} rounds,")
    print(f"llmflow logging into {where}")
    print(
        f"{'delay':>6} {'raw s':>6} {'raw calls/s':>11} {'llmflow s':>9} "
        f"{'llmflow calls/s':>15} {'ratio':>5}"
    )
    for delay, raw_s, ours_s, *_ in rows:
        print(
            f"{delay:>6g} {raw_s:>6.2f} {args.calls / raw_s:>11.1f} {ours_s:>9.2f} "
            f"{args.calls / ours_s:>15.1f} {ours_s / raw_s:>5.2f}"
        )
    print("\nlatency per call as each side timed it, all rounds (ms)")
    print(f"{'delay':>6} {'raw p50':>7} {'raw p95':>7} {'llmflow p50':>11} {'llmflow p95':>11}")
    for delay, _, _, raw_latencies, our_latencies, *_ in rows:
        raw_p50, raw_p95 = _percentiles_ms(raw_latencies)
        our_p50, our_p95 = _percentiles_ms(our_latencies)
        print(f"{delay:>6g} {raw_p50:>7.1f} {raw_p95:>7.1f} {our_p50:>11.1f} {our_p95:>11.1f}")
    print("\none whole `llmflow run` process: imports, trace writer and report included")
    print(f"{'delay':>6} {'wall s':>6} {'peak RSS MB':>11} {'+ trace writer RSS MB':>21}")
    for delay, *_, cli_s, rss, both in rows:
        total = f"{both:.0f}" if both is not None else "n/a"
        print(f"{delay:>6g} {cli_s:>6.2f} {rss:>11.0f} {total:>21}")


def _percentiles_ms(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return (
        1000 * ordered[len(ordered) // 2],
        1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    )


if __name__ == "__main__":
    main()
