"""A run's tables, written a row at a time, read as MLflow reads the tables it writes itself."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from llmflow.tracking.runs import RunStore

COLUMNS = {
    "case": ["a", "b", "ç"],
    "latency_s": [0.5, None, 1e-9],
    "response": ["x\ny", None, '"quoted" ]}'],
    "cached": [False, True, False],
}


def test_a_table_reads_back_with_mlflow_load_table(tracking_uri: str):
    store = RunStore(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("tables")
    run_id = client.create_run(experiment_id).info.run_id
    store.log_table(run_id, COLUMNS, "calls.json")
    store.log_table(run_id, COLUMNS, "quality/per_label.json")
    store.log_table(run_id, COLUMNS, "calls.json")  # a resumed run, finished again
    for path in ("calls.json", "quality/per_label.json"):
        table = client.load_table(experiment_id, path, run_ids=[run_id], extra_columns=["run_id"])
        assert list(table.columns) == [*COLUMNS, "run_id"]
        assert len(table) == 3, "a table written twice is not appended to"
        for name, values in COLUMNS.items():
            read = [None if v != v else v for v in table[name].tolist()]  # NaN: no value
            assert read == values, name
    logged = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert logged == [
        {"path": "calls.json", "type": "table"},
        {"path": "quality/per_label.json", "type": "table"},
    ]
