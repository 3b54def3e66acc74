"""A batched `llmflow run` against the fake OpenAI Batch API: wall time, CPU and the peak RSS of
the process tree (llmflow and its trace writer), per number of calls.

The fake runs in this process (its CPU is not counted) and moves a job one state on at each
poll, so the time is llmflow's own: building and uploading the jobs, polling, reading the
results, journaling, tracing and finishing the runs into a fresh sqlite store.

    python bench/batch.py [--calls 10000 100000] [--poll-s 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from tests.fakes.openai import FakeOpenAI  # noqa: E402
from throughput import whole_run  # noqa: E402


def experiment_file(directory: Path, url: str, n: int, poll_s: float) -> Path:
    """The run as a user with this many prompts writes it: a .jsonl prompts file, the report."""
    prompts = directory / f"prompts-{n}.jsonl"
    with prompts.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i:06d}", "user": f"Question number {i}"}) + "\n")
    document = {
        "experiment": f"batch-bench-{n}",
        "task": "chat",
        "prompts": prompts.name,
        "report": True,
        "models": [
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": f"{url}/v1",
                "max_tokens": 64,
                "price_as": "openai/gpt-4o-mini",
                "batch": {"poll_s": poll_s},
            }
        ],
    }
    path = directory / f"batch-{n}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10_000])
    parser.add_argument("--poll-s", type=float, default=0.5)
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = "test-openai-key"
    rows = []
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory(prefix="llmflow-batch-") as tmp:
        fake.batch.auto = True
        for n in args.calls:
            path = experiment_file(Path(tmp), fake.url, n, args.poll_s)
            wall, cpu, peak = whole_run(path, Path(tmp))
            jobs = len(fake.batch.jobs)
            sent_twice = sum(1 for count in fake.batch.submitted.values() if count > 1)
            rows.append((n, jobs, wall, cpu, peak, sent_twice))
            fake.batch.jobs.clear()
            fake.batch.submitted.clear()
    print("| calls | jobs | wall (s) | CPU (s) | peak RSS of the tree (MB) | sent twice |")
    print("|---|---|---|---|---|---|")
    for n, jobs, wall, cpu, peak, twice in rows:
        print(f"| {n:,} | {jobs} | {wall:.1f} | {cpu:.1f} | {peak:.0f} | {twice} |")


if __name__ == "__main__":
    main()
