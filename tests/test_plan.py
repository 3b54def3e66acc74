from collections.abc import Iterator
from pathlib import Path

import pytest

from llmflow.config import load_experiment
from llmflow.errors import ConfigError
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


def test_a_sweep_value_listed_twice_is_refused(tmp_path: Path):
    path = write_experiment(
        tmp_path, [{"provider": "ollama", "model": "m"}], sweep={"temperature": [0.5, 0.5]}
    )
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == f"{path}: sweep.temperature: 0.5 appears twice"


def test_sweep_values_that_print_alike_get_distinct_ids(tmp_path: Path):
    sweep = {"temperature": [0.5, 0.5000001, 0.7], "seed": [1, 2]}
    path = write_experiment(tmp_path, [{"provider": "ollama", "model": "m"}], sweep=sweep)
    ids = [v.id for v in build_plan(load_experiment(path)).variants]
    assert len(set(ids)) == len(ids) == 6
    assert "m[temperature=0.5,seed=1]" in ids and "m[temperature=0.5000001,seed=1]" in ids
    assert "m[temperature=0.7,seed=2]" in ids, "a value that prints exactly stays short"


def test_entries_with_temperatures_that_print_alike_get_distinct_ids(tmp_path: Path):
    models = [{"provider": "local", "temperature": t} for t in (0.5, 0.5000001)]
    plan = build_plan(load_experiment(write_experiment(tmp_path, models)))
    assert [v.id for v in plan.variants] == [
        "local:gemma-3-270m@t0.5",
        "local:gemma-3-270m@t0.5000001",
    ]


def test_a_name_that_collides_with_a_generated_id_is_refused(tmp_path: Path):
    models = [
        {"provider": "ollama", "model": "m", "name": "m#1"},
        {"provider": "ollama", "model": "m", "name": "m"},
        {"provider": "ollama", "model": "m", "name": "m"},
    ]
    with pytest.raises(ConfigError, match=r"two variants would both be called 'm#1'"):
        build_plan(load_experiment(write_experiment(tmp_path, models)))


def test_calls_are_streamed_not_built_up_front(tmp_path: Path):
    path = write_experiment(tmp_path, [{"provider": "local"}], repeats=400_000, warmup=2)
    plan = build_plan(load_experiment(path))
    assert plan.n_calls == 2 * 400_000
    calls = plan.calls()
    assert isinstance(calls, Iterator) and next(calls).key == ("gemma-3-270m", "explain-mlflow", 0)
    assert [c.repeat for c in plan.warmup_calls()] == [-1, -2]


def test_a_classifier_answers_whole_so_it_is_not_streamed(tmp_path: Path):
    """Not streamed, its calls have no time to first token (a 1 ms TTFT would be invented)."""
    train = Path(__file__).parents[1] / "examples" / "data" / "tickets_train.csv"
    models = [
        {"provider": "sklearn", "model": "tfidf-logreg", "train": str(train)},
        {"provider": "ollama", "model": "llama3.1"},
    ]
    prompts = [{"id": "p", "user": "I was charged twice", "expected": "billing"}]
    path = write_experiment(
        tmp_path,
        models,
        task="classify",
        labels=["billing", "technical", "account", "other"],
        prompts=prompts,
    )
    plan = build_plan(load_experiment(path))
    assert [v.settings.stream for v in plan.variants] == [False, True]
