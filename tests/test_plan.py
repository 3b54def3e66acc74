from pathlib import Path

from llmflow.config import load_experiment
from llmflow.plan import build_plan
from tests.helpers import write_experiment


def test_plan_crosses_variants_cases_and_repeats(tmp_path: Path):
    models = [
        {"provider": "local", "temperature": 0.7},
        {"provider": "local", "temperature": 0.6},
        {"provider": "ollama", "model": "llama3.1", "name": "llama"},
    ]
    plan = build_plan(load_experiment(write_experiment(tmp_path, models, repeats=3)))
    assert [v.id for v in plan.variants] == [
        "local:gemma-3-270m@t0.7",
        "local:gemma-3-270m@t0.6",
        "llama",
    ]
    calls = list(plan.calls())
    assert len(calls) == plan.n_calls == 3 * 2 * 3
    assert len({c.key for c in calls}) == len(calls)
    assert calls[0].repeat == 0 and calls[-1].repeat == 2
    system, user = plan.cases[0].messages
    assert (system.role, user.role) == ("system", "user")


def test_identical_entries_still_get_unique_ids(tmp_path: Path):
    models = [{"provider": "ollama", "model": "llama3.1"}] * 2
    plan = build_plan(load_experiment(write_experiment(tmp_path, models)))
    assert [v.id for v in plan.variants] == ["ollama:llama3.1#1", "ollama:llama3.1#2"]
