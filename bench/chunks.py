"""CPU per streamed chunk: is a long answer slower per token through llmflow than through the
raw SDK?

The fake OpenAI-compatible server (its own process, no delay) echoes each prompt one word per
chunk, so a prompt of W words is answered in about W chunks. For short and long answers, N calls
are made at the same concurrency by two whole processes: a raw AsyncOpenAI loop streaming with
the SDK (nothing recorded), and `llmflow run` into a fresh sqlite store (trace writer, journal,
metrics and report included). CPU is the process tree's, from getrusage. The fixed costs (imports,
MLflow, the report) are the same for short and long answers, so the difference divided by the
extra chunks is each side's CPU per chunk.

    python bench/chunks.py [--calls 100] [--short 10] [--long 500] [--concurrency 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import start_fake  # noqa: E402

RAW_LOOP = """
import asyncio, sys
import openai

async def main(url, prompts, concurrency):
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="no-key", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(prompt):
        async with slots:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                stream_options={"include_usage": True},
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    answers = await asyncio.gather(*(one(p) for p in prompts))
    assert all(answers), "an empty answer"
    await client.close()

url, words, calls, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
prompts = [" ".join(f"w{i}x{j}" for j in range(words)) for i in range(calls)]
asyncio.run(main(url, prompts, concurrency))
"""


def prompts(words: int, calls: int) -> list[str]:
    return [" ".join(f"w{i}x{j}" for j in range(words)) for i in range(calls)]


def experiment_file(directory: Path, url: str, words: int, calls: int, concurrency: int) -> Path:
    document = {
        "experiment": f"chunks-{words}",
        "prompts": [{"id": f"p{i}", "user": text} for i, text in enumerate(prompts(words, calls))],
        "concurrency": concurrency,
        "cache": False,
        "models": [{"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{url}/v1"}],
    }
    path = directory / f"chunks-{words}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def tree_cpu(command: list[str], cwd: Path) -> float:
    """CPU seconds (user + system) of `command` and every descendant it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[2:4]} failed:\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--short", type=int, default=10, help="words (chunks) per short answer")
    parser.add_argument("--long", type=int, default=500, help="words (chunks) per long answer")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    fake, url = start_fake(0.0)
    cpu: dict[tuple[str, int], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            files = {
                w: experiment_file(directory, url, w, args.calls, args.concurrency)
                for w in (args.short, args.long)
            }
            for _ in range(args.rounds):
                for words in (args.short, args.long):
                    raw = [sys.executable, "-c", RAW_LOOP, url, str(words), str(args.calls)]
                    raw.append(str(args.concurrency))
                    cpu.setdefault(("raw", words), []).append(tree_cpu(raw, directory))
                    store = f"sqlite:///{directory}/mlflow-{time.monotonic_ns()}.db"
                    run = [sys.executable, "-m", "llmflow.cli", "run", str(files[words])]
                    run += ["--tracking-uri", store, "--no-cache"]
                    cpu.setdefault(("llmflow", words), []).append(tree_cpu(run, directory))
    finally:
        fake.terminate()
    extra_chunks = (args.long - args.short) * args.calls
    print(
        f"{args.calls} calls, concurrency {args.concurrency}, {args.rounds} round(s), "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end"
    )
    print("| | CPU, short answers | CPU, long answers | CPU per extra chunk |")
    print("|---|---|---|---|")
    per_chunk = {}
    for tool in ("raw", "llmflow"):
        short, long = min(cpu[(tool, args.short)]), min(cpu[(tool, args.long)])
        per_chunk[tool] = (long - short) / extra_chunks
        print(
            f"| {tool} | {short:.2f} s ({args.short} chunks) | {long:.2f} s ({args.long} chunks) "
            f"| {per_chunk[tool] * 1e6:.0f} µs |"
        )
    print(f"llmflow / raw, CPU per chunk: {per_chunk['llmflow'] / per_chunk['raw']:.2f}")


if __name__ == "__main__":
    main()
