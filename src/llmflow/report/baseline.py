"""A run against a baseline run: deltas per variant, marked when outside the noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import LlmflowError
from ..tracking.runs import KIND_PARENT, TAG_CONFIG_SHA, TAG_KIND
from .comparison import Comparison
from .interpret import distinct


@dataclass(frozen=True)
class Delta:
    variant_id: str
    latency_p50_s: tuple[float | None, float | None]  # (baseline, current)
    total_tokens: tuple[int | None, int | None]
    estimated_cost_usd: tuple[float | None, float | None]
    significant: bool  # the 95% intervals of the two medians do not overlap


def previous_run_id(client: Any, experiment: str, run_id: str) -> str:
    """The run of the same experiment file (same hash) that started just before run_id."""
    exp = client.get_experiment_by_name(experiment)
    current = client.get_run(run_id)
    sha = current.data.tags.get(TAG_CONFIG_SHA)
    earlier = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_CONFIG_SHA}` = '{sha}' "
        f"and attributes.start_time < {current.info.start_time}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not earlier:
        raise LlmflowError(f"run {run_id} has no earlier run of the same experiment file")
    return earlier[0].info.run_id


def deltas(baseline: Comparison, current: Comparison) -> list[Delta]:
    before = {r.variant_id: r for r in baseline.rows}
    out = []
    for row in current.rows:
        old = before.get(row.variant_id)
        if old is None:
            continue
        out.append(
            Delta(
                variant_id=row.variant_id,
                latency_p50_s=(old.latency_p50_s, row.latency_p50_s),
                total_tokens=(old.total_tokens, row.total_tokens),
                estimated_cost_usd=(old.estimated_cost_usd, row.estimated_cost_usd),
                significant=distinct(old, row),
            )
        )
    return out


def to_markdown(found: list[Delta], baseline_id: str, current_id: str) -> str:
    lines = [
        f"Baseline `{baseline_id}` -> current `{current_id}`; * = outside the noise "
        "(the 95% intervals of the two medians do not overlap)",
        "",
        "| Model | p50 latency (s) | change | Total tokens | Estimated cost |",
        "|---|---|---|---|---|",
    ]
    for d in found:
        (a, b) = d.latency_p50_s
        change = f"{(b - a) / a:+.1%}{' *' if d.significant else ''}" if a and b else "-"
        lines.append(
            f"| {d.variant_id} | {_pair(d.latency_p50_s, '{:.3f}')} | {change} | "
            f"{_pair(d.total_tokens, '{:,}')} | {_pair(d.estimated_cost_usd, '${:.6f}')} |"
        )
    return "\n".join(lines) + "\n"


def _pair(values: tuple[Any, Any], fmt: str) -> str:
    return " -> ".join("-" if v is None else fmt.format(v) for v in values)
