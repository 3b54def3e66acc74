"""After `llmflow score`: the versions registered from a re-scored variant run record its
metrics anew, since `llmflow models` and every promotion gate read what a version records.

A version's `metric.<name>` tags are rewritten with the run's current values (a metric the
run no longer has, such as the pass rate of checks since removed, loses its tag: a gate on it
then says it was not recorded), and a tag `llmflow.rescored.<epoch ms>` keeps what changed,
from what to what, when and by whom, so the earlier numbers stay readable in MLflow.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from ..tracking.schema import RESCORED_PREFIX
from ..tracking.schema import SOURCE_RUN_TAG as SOURCE_TAG
from .lookups import every_page
from .versions import RECORDED_METRICS, _iso, _who, recorded_metrics


def refresh_versions(client: Any, run_ids: list[str]) -> list[str]:
    """Make every version registered from these variant runs record their current metrics;
    one line per version whose numbers changed."""
    lines = []
    for run_id in run_ids:
        found = every_page(client.search_model_versions, f"tags.`{SOURCE_TAG}` = '{run_id}'")
        if not found:
            continue
        current = _recordable(client.get_run(run_id).data.metrics)
        for mv in found:
            changed = _rewrite(client, mv, current)
            if changed:
                lines.append(_line(mv, changed))
    return lines


def _recordable(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k in RECORDED_METRICS and not math.isnan(v)}


def _rewrite(client: Any, mv: Any, current: dict[str, float]) -> dict[str, list[float | None]]:
    """Set the version's metric tags to `current`; {metric: [before, after]} of those changed."""
    recorded = recorded_metrics(mv)
    changed: dict[str, list[float | None]] = {}
    for key in sorted(set(recorded) | set(current)):
        before, after = recorded.get(key), current.get(key)
        if before == after:
            continue
        changed[key] = [before, after]
        if after is None:
            client.delete_model_version_tag(mv.name, mv.version, f"metric.{key}")
        else:
            client.set_model_version_tag(mv.name, mv.version, f"metric.{key}", repr(after))
    if changed:
        now = time.time()
        record = {"at": _iso(now), "by": _who(), "changed": changed}
        key = f"{RESCORED_PREFIX}{int(now * 1000)}"
        client.set_model_version_tag(mv.name, mv.version, key, json.dumps(record))
    return changed


def _line(mv: Any, changed: dict[str, list[float | None]]) -> str:
    shown = [k for k in changed if not k.endswith(("_ci_low", "_ci_high"))] or list(changed)
    moves = ", ".join(f"{k} {_value(changed[k][0])} -> {_value(changed[k][1])}" for k in shown)
    return f"{mv.name} v{mv.version} now records {moves} (what models and promotion gates read)"


def _value(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"
