"""The batch jobs' lines in the run's journal (journal.py), so that `--resume` collects a job
instead of submitting its calls again.

Three lines a job: "batch_submitting" (its label, variant and calls) before anything is sent;
"batch_job" (the provider's job id) as soon as the job exists, before it is waited for;
"batch_collected" once every answer of it is journaled. A job with no id line was either never
created or created by a process killed before it wrote the id: the provider is asked for a
job of that label (api.BatchAPI.find) before its calls are sent again. A fourth,
"batch_cancelled", says that `llmflow batches cancel` cancelled it at the provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..record_lines import journal_lines

SUBMITTING, SUBMITTED, COLLECTED = "batch_submitting", "batch_job", "batch_collected"
CANCELLED = "batch_cancelled"


@dataclass
class Job:
    label: str
    variant_id: str
    keys: list[tuple[str, int]]  # (case id, repeat) of each request, in order: key = index
    job_id: str | None = None
    collected: bool = False
    cancelled: bool = False  # by `llmflow batches cancel`
    created_s: float | None = None  # epoch seconds, when it was submitted
    extra: dict = field(default_factory=dict)

    def submitting_line(self) -> dict:
        return {
            "type": SUBMITTING,
            "label": self.label,
            "variant_id": self.variant_id,
            "keys": [list(k) for k in self.keys],
            "created_s": self.created_s,
        }

    def submitted_line(self) -> dict:
        return {"type": SUBMITTED, "label": self.label, "job_id": self.job_id}

    def collected_line(self) -> dict:
        return {"type": COLLECTED, "label": self.label}

    def cancelled_line(self) -> dict:
        return {"type": CANCELLED, "label": self.label, "job_id": self.job_id}


def read_jobs(path: Path) -> list[Job]:
    """The batch jobs a journal names, in the order they were submitted."""
    jobs: dict[str, Job] = {}
    if not path.exists():
        return []
    for line in journal_lines(path):
        if '"type": "batch' not in line:  # a call's line: skipped unparsed
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line a kill cut short
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == SUBMITTING:
            keys = [(str(case), int(repeat)) for case, repeat in entry["keys"]]
            jobs[entry["label"]] = Job(
                entry["label"], entry["variant_id"], keys, created_s=entry.get("created_s")
            )
        elif kind == SUBMITTED and entry.get("label") in jobs:
            jobs[entry["label"]].job_id = entry["job_id"]
        elif kind == COLLECTED and entry.get("label") in jobs:
            jobs[entry["label"]].collected = True
        elif kind == CANCELLED and entry.get("label") in jobs:
            jobs[entry["label"]].cancelled = True
    return list(jobs.values())
