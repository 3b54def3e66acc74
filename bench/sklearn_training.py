"""What training `provider: sklearn` costs on a large file: N generated rows (each label's name
among filler words drawn from a million, so that the vocabulary grows with the rows as a real
corpus's does), fitted in a fresh process per pipeline; its wall time, peak memory (the whole
process: Python, scikit-learn and the rows included) and the pickled model's size.

    python bench/sklearn_training.py [--rows 200000] [--pipelines tfidf-logreg,tfidf-nb]

Before the hashed features, 200,000 rows took 6.4 GB at the peak and logged a 1.1 GB model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("billing", "technical", "account", "other")

_CHILD = """
import json, pickle, resource, sys, time
sys.path.insert(0, {root!r})
from tests.helpers import training_rows
from llmflow.sklearn_training import fit
rows = training_rows({rows}, {labels!r})
start = time.perf_counter()
pipeline, metrics = fit({name!r}, [t for t, _ in rows], [l for _, l in rows], say=print)
print(json.dumps({{
    "wall_s": round(time.perf_counter() - start, 1),
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    "model_mb": round(len(pickle.dumps(pipeline)) / 1e6, 1),
    "cv_accuracy": metrics.get("cv_accuracy"),
}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--pipelines", default="tfidf-logreg,tfidf-linearsvc,tfidf-nb")
    args = parser.parse_args()
    for name in args.pipelines.split(","):
        code = _CHILD.format(root=str(ROOT), rows=args.rows, labels=LABELS, name=name)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: {args.rows:,} rows", json.dumps(result), flush=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    print(f"largest child peak: {children} MB")


if __name__ == "__main__":
    main()
