"""The comparison, read back from MLflow alone, and rendered as a table, markdown, csv or json."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import LlmflowError
from ..metrics import BY_KEY as METRIC_BY_KEY
from ..providers import TRADITIONAL
from ..tracking.experiments import experiment_named
from ..tracking.run_lookup import resolve_run
from ..tracking.runs import KIND_PARENT, KIND_VARIANT, TAG_KIND, TAG_VARIANT
from .classification import (
    CLASSIFY_COLUMNS,
    classification_cells,
    classification_fields,
    has_classification,
)
from .quality import QUALITY_COLUMNS, has_quality, quality_cells, quality_fields


@dataclass(frozen=True)
class ComparisonRow:
    """One variant's line in the comparison; keys are the `--format json` contract."""

    model: str
    provider: str
    temperature: float | str | None
    task_type: str
    latency_s: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None
    total_tokens: int | None
    input_tokens: int | None
    output_tokens: int | None
    estimated_cost_usd: float | None
    cost_kind: str
    n_calls: int
    n_errors: int
    run_id: str
    variant_id: str
    skipped: str | None = None
    latency_p99_s: float | None = None
    latency_p50_ci_low_s: float | None = None
    latency_p50_ci_high_s: float | None = None
    ttft_p95_s: float | None = None
    tpot_s: float | None = None
    output_tokens_per_s: float | None = None
    cost_per_call_usd: float | None = None
    n_timed: int = 0
    n_cached: int = 0
    n_batched: int = 0  # sent through a batch API: no latency measured
    batch_wall_s: float | None = None
    cold_start_latency_s: float | None = None
    swept: dict[str, Any] | None = None
    n_empty: int = 0  # successful calls whose answer is blank
    n_usage_missing: int = 0  # successful calls without a token count: the sums are then None
    # quality, when the experiment has checks: pass rate with its 95% Wilson interval
    pass_rate: float | None = None
    pass_rate_ci_low: float | None = None
    pass_rate_ci_high: float | None = None
    n_scored: int = 0
    n_score_errors: int = 0
    judge_cost_usd: float | None = None
    scores: dict[str, float] | None = None  # mean of each check's values, by check name
    # task classify: accuracy (the label check's pass rate) with its 95% Wilson interval
    accuracy: float | None = None
    accuracy_ci_low: float | None = None
    accuracy_ci_high: float | None = None
    macro_f1: float | None = None
    n_unparsed: int | None = None  # answers naming no label

    @property
    def label(self) -> str:
        return self.variant_id or self.model

    @property
    def n_answered(self) -> int:
        return self.n_calls - self.n_errors


@dataclass(frozen=True)
class Comparison:
    experiment: str
    parent_run_id: str
    rows: tuple[ComparisonRow, ...]


def load_comparison(client: Any, experiment: str, run_id: str | None = None) -> Comparison:
    """The variants of one `llmflow run` (the latest, unless run_id, or a unique prefix of it,
    names one)."""
    exp = experiment_named(client, experiment)
    if run_id is None:
        parents = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{TAG_KIND}` = '{KIND_PARENT}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not parents:
            raise LlmflowError(
                f"experiment {experiment!r} has no llmflow run yet: run `llmflow run`"
            )
        run_id = parents[0].info.run_id
    else:
        run_id = resolve_run(client, run_id, KIND_PARENT, exp)
    children = client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`{TAG_KIND}` = '{KIND_VARIANT}'"
        ),
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    if not children:
        raise LlmflowError(f"run {run_id} of {experiment!r} has no variant runs")
    rows = sorted((_row(run) for run in children), key=lambda r: r.variant_id)
    return Comparison(experiment=experiment, parent_run_id=run_id, rows=tuple(rows))


def _row(run: Any) -> ComparisonRow:
    return row_from(run.info.run_id, run.data.params, run.data.metrics, run.data.tags)


def row_from(
    run_id: str, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
) -> ComparisonRow:
    """A variant's row from its run's params, metrics (stats.summarize) and tags. A NaN metric
    is one its checks no longer feed (`llmflow score`): unknown, as if absent."""
    metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    cost_model = params.get("cost_model", "")
    if "estimated_cost_usd" in metrics:
        kind = "local" if cost_model.startswith("local") else "priced"
    else:
        kind = "unpriced"

    return ComparisonRow(
        model=params.get("model", ""),
        provider=params.get("provider", ""),
        temperature=_number_or_text(params.get("temperature")),
        task_type=params.get("task_type", ""),
        cost_kind=kind,
        run_id=run_id,
        variant_id=tags.get(TAG_VARIANT, params.get("variant_id", "")),
        skipped=tags.get("llmflow.skipped"),
        swept=json.loads(tags["llmflow.swept"]) if "llmflow.swept" in tags else None,
        **{**_metric_fields(metrics), **quality_fields(metrics), **classification_fields(metrics)},
    )


def _metric_fields(metrics: dict[str, float]) -> dict[str, Any]:
    """Every declared metric that is a ComparisonRow field: counts absent from the run are 0
    (nothing was counted), every other metric absent is unknown (None)."""
    out: dict[str, Any] = {}
    for name in ComparisonRow.__dataclass_fields__:
        declared = METRIC_BY_KEY.get(name)
        if declared is None:
            continue
        value = metrics.get(name)
        if value is None:
            out[name] = 0 if declared.aggregation == "count" else None
        else:
            out[name] = int(value) if declared.integer else value
    return out


def _number_or_text(value: str | None) -> float | str | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


# --- rendering ---------------------------------------------------------------------------------

SEED_COLUMNS = (
    "Model",
    "Provider",
    "Temperature",
    "Latency (s)",
    "Total tokens",
    "Estimated cost",
    "Task type",
)
EXTRA_COLUMNS = ("p50 (s)", "p95 (s)", "TTFT p50 (s)", "Calls", "Errors")
TEXT_COLUMNS = ("Model", "Provider", "Task type", "Estimated cost")  # the others are numbers
# what a narrow terminal still shows: the variant, its speed, cost, errors and quality
ESSENTIAL_COLUMNS = (
    "Model",
    "p50 (s)",
    "p95 (s)",
    "Estimated cost",
    "Errors",
    "Pass rate",
    "Accuracy",
)
EXTRA_METRICS = ("latency_p50_s", "latency_p95_s", "ttft_p50_s", "n_calls", "n_errors")


def table_rows(comparison: Comparison) -> list[list[str]]:
    """Display strings for SEED_COLUMNS + EXTRA_COLUMNS, one list per variant."""
    out = []
    for r in comparison.rows:
        model = r.variant_id if r.variant_id and r.variant_id != r.model else r.model
        if r.skipped:
            out.append(
                [
                    model,
                    r.provider,
                    _fmt_temp(r.temperature),
                    "skipped",
                    "-",
                    "-",
                    r.task_type,
                    "-",
                    "-",
                    "-",
                    "0",
                    "-",
                ]
            )
            continue
        out.append(
            [
                model,
                r.provider,
                _fmt_temp(r.temperature),
                _cell(r, "latency_s"),
                _cell(r, "total_tokens"),
                format_cost(r.estimated_cost_usd, r.cost_kind),
                r.task_type,
                *(_cell(r, key) for key in EXTRA_METRICS),
            ]
        )
    return out


def _cell(row: ComparisonRow, key: str) -> str:
    return METRIC_BY_KEY[key].format(getattr(row, key))


def format_cost(usd: float | None, kind: str) -> str:
    if usd is None:
        return "unpriced"
    text = METRIC_BY_KEY["estimated_cost_usd"].format(usd)
    return f"{text} (local)" if kind == "local" else text


def _fmt_temp(value: float | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def warnings(comparison: Comparison) -> list[str]:
    """What a cell cannot say: blank answers, and token counts the server did not send."""
    out = []
    for r in comparison.rows:
        if r.skipped:
            continue
        if r.n_empty:
            out.append(f"{r.n_empty} of {r.n_answered} answers of {r.label} were empty")
        if r.n_batched:
            out.append(batch_note(r))
        if r.n_usage_missing and r.provider not in TRADITIONAL:
            out.append(
                f"tokens not reported by the server for {r.n_usage_missing} of {r.n_answered} "
                f"calls of {r.label}: its token sums are unknown (-), not 0"
            )
    return out


def batch_note(r: ComparisonRow) -> str:
    """A batched variant's latency is unknown: said wherever its latency would be compared."""
    wall = f" (longest job {r.batch_wall_s:.0f} s)" if r.batch_wall_s is not None else ""
    return (
        f"latency was not measured for {r.label}: {r.n_batched} call(s) went through the "
        f"provider's batch API{wall}; it is left out of every latency comparison"
    )


def table_cells(comparison: Comparison) -> tuple[tuple[str, ...], list[list[str]]]:
    """The header and the rows of the comparison's table, as markdown and the terminal show it."""
    header = SEED_COLUMNS + EXTRA_COLUMNS + _quality_header(comparison)
    return header, _rows_with_quality(comparison)


def to_markdown(comparison: Comparison) -> str:
    header, rows = table_cells(comparison)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    notes = [f"- **Warning**: {w}" for w in warnings(comparison)]
    notes += [f"- {r.variant_id} skipped: {r.skipped}" for r in comparison.rows if r.skipped]
    lines += [""] + notes if notes else []
    return "\n".join(lines) + "\n"


def _quality_header(comparison: Comparison) -> tuple[str, ...]:
    if has_classification(comparison.rows):  # accuracy, not the pass rate of all checks
        return CLASSIFY_COLUMNS
    return QUALITY_COLUMNS if has_quality(comparison.rows) else ()


def _rows_with_quality(comparison: Comparison) -> list[list[str]]:
    """table_rows, and the quality (task classify: accuracy) cells when any variant was
    checked."""
    rows = table_rows(comparison)
    if has_classification(comparison.rows):
        cells = classification_cells
    elif has_quality(comparison.rows):
        cells = quality_cells
    else:
        return rows
    return [row + cells(r) for row, r in zip(rows, comparison.rows, strict=True)]


def to_json(comparison: Comparison) -> str:
    return json.dumps([asdict(r) for r in comparison.rows], indent=2) + "\n"


def to_csv(comparison: Comparison) -> str:
    buffer = io.StringIO()
    fields = list(ComparisonRow.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in comparison.rows:
        writer.writerow({k: _csv_cell(v) for k, v in asdict(row).items()})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    """A dict cell (the swept settings, each check's mean) as JSON, which any reader parses;
    csv would write Python's repr."""
    return json.dumps(value) if isinstance(value, dict) else value


def comparison_artifacts(comparison: Comparison) -> dict[str, str]:
    """What the parent run stores of its own comparison."""
    return {
        "comparison/comparison.md": to_markdown(comparison),
        "comparison/comparison.json": to_json(comparison),
        "comparison/comparison.csv": to_csv(comparison),
    }
