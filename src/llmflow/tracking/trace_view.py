"""A saved view of the MLflow Traces tab that reads llmflow's traces: the trace name (which
variant answered which prompt, and which traces are a judge's), tokens and cost beside the
answer. The tab's default columns show neither name nor variant; this view is one click away in
its Views menu (`llmflow calls`), or opened by a link with `?traceViewShareKey=llmflow`.

MLflow keeps a saved view as an experiment tag `mlflow.tracesV4ViewState.<id>`: JSON with the
view's name and its state, deflated and base64-encoded, in the form MLflow's own demo writes
(mlflow/demo/generators/saved_views.py, MLflow 3.17). A UI that does not know it ignores it."""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import Any

VIEW_ID = "llmflow"
VIEW_TAG = f"mlflow.tracesV4ViewState.{VIEW_ID}"
VIEW_NAME = "llmflow calls"
COLUMNS = ("start_time", "trace_name", "input", "output", "duration", "state", "tokens", "cost")


def view_tag_value(created_ms: int) -> str:
    state = {"single": {"cols": ",".join(COLUMNS), "pageSize": "50"}, "multi": {}}
    packed = zlib.compress(json.dumps(state, separators=(",", ":")).encode())
    view = {
        "name": VIEW_NAME,
        "createdAt": created_ms,
        "state": "deflate;" + base64.b64encode(packed).decode("ascii"),
    }
    return json.dumps(view, separators=(",", ":"))


def add_trace_view(client: Any, experiment_id: str, tags: dict[str, str]) -> None:
    """The view on the experiment, unless it has one by that id already (a user may have
    changed it)."""
    if VIEW_TAG not in tags:
        client.set_experiment_tag(experiment_id, VIEW_TAG, view_tag_value(int(time.time() * 1000)))
