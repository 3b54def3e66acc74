"""What the pairwise verdicts cost `llmflow compare`: a sweep of V variants x P prompts.

Builds a sqlite store holding one llmflow run of V variant runs, each with its metrics, tags
and a P-row calls.json (a pass/fail check, a latency, a cost per call: what `llmflow run`
writes), then times whole processes, interleaved, N repetitions:

    llmflow compare -e NAME -f json             the comparison alone
    llmflow compare -e NAME --pairs -f json     every pair of variants on every metric

and prints median [min-max] wall time of each and the difference (the issue's goal: under 1 s
for 8 variants x 1,000 prompts). It also times `pairwise()` alone in this process.

    python bench/pairs.py [--variants 8] [--prompts 1000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXPERIMENT = "pairs-bench"


def build_store(uri: str, variants: int, prompts: int) -> list[list[dict]]:
    """One parent run and `variants` variant runs, as llmflow's trace writer leaves them."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from llmflow.tracking.runs import KIND_PARENT, KIND_VARIANT, TAG_KIND, TAG_VARIANT

    rng = np.random.default_rng(0)
    client = MlflowClient(uri)
    experiment = client.create_experiment(EXPERIMENT)
    parent = client.create_run(experiment, tags={TAG_KIND: KIND_PARENT}).info.run_id
    difficulty = rng.uniform(0, 1, prompts)
    speed = rng.uniform(0.2, 2.0, prompts)
    tables = []
    for v in range(variants):
        name = f"model-{v}"
        tags = {TAG_KIND: KIND_VARIANT, TAG_VARIANT: name, "mlflow.parentRunId": parent}
        run = client.create_run(experiment, tags=tags, run_name=name).info.run_id
        passed = rng.random(prompts) < np.clip(difficulty + 0.02 * v, 0, 1)
        latency = speed * rng.lognormal(0.05 * v, 0.2, prompts)
        cost = 1e-5 * (1 + v) * rng.uniform(0.8, 1.2, prompts)
        columns = ["case", "repeat", "prompt", "response", "error", "latency_s", "cost_usd"]
        columns += ["cached", "equals", "passed"]
        data = [
            [f"p{i}", 0, "Q?", "A.", None, float(latency[i]), float(cost[i]), False]
            + [bool(passed[i]), bool(passed[i])]
            for i in range(prompts)
        ]
        client.log_dict(run, {"columns": columns, "data": data}, "calls.json")
        metrics = {
            "n_calls": prompts,
            "n_errors": 0,
            "latency_p50_s": float(np.median(latency)),
            "pass_rate": float(passed.mean()),
            "n_scored": prompts,
            "cost_per_call_usd": float(cost.mean()),
            "estimated_cost_usd": float(cost.sum()),
        }
        now = int(time.time() * 1000)
        client.log_batch(
            run,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param("model", name), Param("provider", "openai"), Param("variant_id", name)],
        )
        client.set_terminated(run)
        tables.append([dict(zip(columns, row, strict=True)) for row in data])
    client.set_terminated(parent)
    return tables


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    llmflow = str(Path(sys.executable).with_name("llmflow"))
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        tables = build_store(uri, args.variants, args.prompts)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        base = [llmflow, "compare", "-e", EXPERIMENT, "-f", "json"]
        cases = {"compare": base, "compare --pairs": [*base, "--pairs"]}
        walls: dict[str, list[float]] = {name: [] for name in cases}
        timed(base, env)  # the first process pays the cold file cache
        for rep in range(args.reps):
            order = list(cases) if rep % 2 == 0 else list(reversed(cases))
            for name in order:
                walls[name].append(timed(cases[name], env))
        from llmflow.report.pairs import evidence, pairwise

        start = time.perf_counter()
        found = pairwise([evidence(f"model-{i}", t) for i, t in enumerate(tables)])
        in_process = time.perf_counter() - start
    print(f"{args.variants} variants x {args.prompts} prompts, {args.reps} repetitions")
    print("| case | wall, median [min-max] |")
    print("|---|---|")
    for name, found_walls in walls.items():
        print(
            f"| {name} | {statistics.median(found_walls):.3f} "
            f"[{min(found_walls):.3f}-{max(found_walls):.3f}] s |"
        )
    added = statistics.median(walls["compare --pairs"]) - statistics.median(walls["compare"])
    print(f"pairs add {added:.3f} s to the process (goal: under 1 s)")
    print(f"pairwise() alone: {in_process:.3f} s for {len(found)} pairs")


if __name__ == "__main__":
    main()
