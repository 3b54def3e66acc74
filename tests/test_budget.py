"""The budget: the worst case of a call is never below its real cost, so the limit holds."""

from collections import deque
from pathlib import Path

import pytest

from llmflow.budget import Budget, input_tokens_bound, preflight, worst_case_usd
from llmflow.config import ModelEntry, load_experiment
from llmflow.errors import ConfigError
from llmflow.plan import Call, Case, Variant, build_plan, settings_of
from llmflow.pricing import Pricer
from llmflow.scoring.judge_plan import judge_checks
from llmflow.types import Message, Usage
from tests.helpers import write_experiment

CJK = "請用三句話解釋機器學習的基本概念，並舉一個例子。" * 10
PRICED = ModelEntry(
    provider="openai",
    model="m",
    base_url="http://127.0.0.1:1/v1",
    max_tokens=50,
    price_per_mtok={"input": 10.0, "output": 30.0},
)


def cjk_call(repeat: int) -> Call:
    variant = Variant("m", PRICED, settings_of(PRICED))
    case = Case("cjk", (Message("system", "简洁回答。"), Message("user", CJK)))
    return Call(variant, case, repeat)


def most_tokens_any_tokenizer_counts(call: Call) -> int:
    """Byte-level BPE at its worst: a token per byte, plus the chat template's role markers."""
    return sum(len(m.content.encode()) + 4 for m in call.case.messages) + 3


def test_cjk_prompts_under_a_tight_budget_never_pass_the_limit():
    pricer, limit = Pricer(PRICED), 0.1
    budget, in_flight = Budget(limit), deque()
    for repeat in range(200):  # 8 calls in flight at a time, each settled at its real cost
        call = cjk_call(repeat)
        reservation = budget.reserve(worst_case_usd(call, pricer))
        while reservation is None and in_flight:
            budget.settle(*in_flight.popleft())
            reservation = budget.reserve(worst_case_usd(call, pricer))
        if reservation is None:
            break
        usage = Usage(most_tokens_any_tokenizer_counts(call), PRICED.max_tokens)
        in_flight.append((reservation, pricer.price(usage, 1.0).usd))
        if len(in_flight) == 8:
            budget.settle(*in_flight.popleft())
    while in_flight:
        budget.settle(*in_flight.popleft())
    assert limit * 0.8 < budget.spent_usd <= limit


def test_the_input_bound_covers_every_byte():
    call = cjk_call(0)
    assert input_tokens_bound(call) >= most_tokens_any_tokenizer_counts(call)
    assert input_tokens_bound(call) >= 3 * len(CJK)


def test_preflight_prices_cjk_prompts_at_their_bound(tmp_path: Path):
    model = {**PRICED.model_dump(exclude_none=True), "max_tokens": 1}
    path = write_experiment(tmp_path, [model], prompts=[{"id": "a", "user": CJK}], repeats=10)
    plan = build_plan(load_experiment(path))
    pricers = {v.id: Pricer(v.entry) for v in plan.variants}
    # 10 calls of 720 bytes (+ the template's 24 tokens) at $10/Mtok and 1 token at $30/Mtok;
    # 3 characters a token said $0.0099
    worst = 10 * ((720 + 24) * 10 + 1 * 30) / 1e6
    with pytest.raises(ConfigError, match=r"could cost up to \$0\.0747"):
        preflight(plan, pricers, 0.05, False, "e.yaml")
    assert preflight(plan, pricers, 0.08, False, "e.yaml") == pytest.approx(worst)


def test_preflight_counts_warmup_calls(tmp_path: Path):
    model = {**PRICED.model_dump(exclude_none=True)}
    plain = write_experiment(tmp_path, [model], name="a.yaml")
    warm = write_experiment(tmp_path, [model], name="b.yaml", warmup=3)
    costs = []
    for path in (plain, warm):
        plan = build_plan(load_experiment(path))
        costs.append(preflight(plan, {v.id: Pricer(v.entry) for v in plan.variants}, 1, False, "x"))
    first_case = worst_case_usd(next(build_plan(load_experiment(warm)).calls()), Pricer(PRICED))
    assert costs[1] == pytest.approx(costs[0] + 3 * first_case)


@pytest.mark.parametrize("limit", [float("nan"), float("inf"), -1.0])
def test_a_limit_that_bounds_nothing_is_refused(limit: float):
    with pytest.raises(ConfigError, match="max_cost_usd: must be a finite number"):
        Budget(limit)


JUDGE = {
    "type": "judge",
    "name": "graded",
    "provider": "openai",
    "model": "judge-m",
    "base_url": "http://127.0.0.1:1/v1",
    "rubric": "Is the answer right?",
    "max_tokens": 20,
    "price_per_mtok": {"input": 1.0, "output": 2.0},
}


def judged_plan(tmp_path: Path, judge: dict):
    model = PRICED.model_dump(exclude_none=True)
    prompts = [{"id": "a", "user": "Capital of France?", "expected": "Paris"}]
    path = write_experiment(tmp_path, [model], prompts=prompts, repeats=3, scorers=[judge])
    loaded = load_experiment(path)
    plan = build_plan(loaded)
    return loaded, plan, {v.id: Pricer(v.entry) for v in plan.variants}


def test_preflight_counts_a_judge_call_per_graded_call(tmp_path: Path):
    loaded, plan, pricers = judged_plan(tmp_path, JUDGE)
    models_only = preflight(plan, pricers, 1, False, "e.yaml")
    (check,) = judge_checks(loaded)
    assert "Capital of France?" in check.case.messages[0].content
    # each of the 3 graded calls: the judge's prompt, the answer (50 tokens at most, counted 4
    # judge tokens each) at $1/Mtok, and 20 tokens of verdict at $2/Mtok
    judge_input = input_tokens_bound(Call(check.judge, check.case, 0)) + 4 * 50
    per_call = (judge_input * 1.0 + 20 * 2.0) / 1e6
    with_judges = preflight(plan, pricers, 1, False, "e.yaml", [check])
    assert with_judges == pytest.approx(models_only + 3 * per_call)
    with pytest.raises(ConfigError, match=r"of it for judges\), .* over max_cost_usd"):
        preflight(plan, pricers, (models_only + with_judges) / 2, False, "e.yaml", [check])


def test_run_refuses_a_plan_its_judges_put_over_budget(tmp_path: Path):
    from llmflow.experiment import RunRequest, run_experiment

    loaded, plan, pricers = judged_plan(tmp_path, JUDGE)
    limit = preflight(plan, pricers, 1, False, "e.yaml") * 1.01  # the models alone fit
    request = RunRequest(loaded.path, tracking_uri=f"sqlite:///{tmp_path}/m.db", max_cost_usd=limit)
    with pytest.raises(ConfigError, match="for judges"):
        run_experiment(request)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price_per_mtok": None}, r"scorers\[0\]: judge-m has no known price"),
        ({"max_tokens": None}, r"scorers\[0\]\.max_tokens: is required under max_cost_usd"),
    ],
)
def test_an_unbounded_judge_is_named(tmp_path: Path, change: dict, message: str):
    judge = {k: v for k, v in {**JUDGE, **change}.items() if v is not None}
    loaded, plan, pricers = judged_plan(tmp_path, judge)
    with pytest.raises(ConfigError, match=message):
        preflight(plan, pricers, 1, False, "e.yaml", judge_checks(loaded))
    if "price_per_mtok" in change:  # allowed unpriced: counted as nothing known, like a model
        assert preflight(plan, pricers, 1, True, "e.yaml", judge_checks(loaded)) > 0


def test_an_unbounded_entry_is_named_as_the_file_numbers_it_after_a_sweep(tmp_path: Path):
    """Two entries swept over two temperatures are four variants: the second entry is still
    models[1], and the variant is named too."""
    bounded = {**PRICED.model_dump(exclude_none=True), "name": "bounded"}
    unbounded = {**bounded, "name": "open", "max_tokens": None}
    models = [bounded, {k: v for k, v in unbounded.items() if v is not None}]
    path = write_experiment(tmp_path, models, sweep={"temperature": [0.2, 0.7]})
    plan = build_plan(load_experiment(path))
    pricers = {v.id: Pricer(v.entry) for v in plan.variants}
    with pytest.raises(ConfigError) as refused:
        preflight(plan, pricers, 1, False, "e.yaml")
    assert str(refused.value).startswith(
        "e.yaml: models[1].max_tokens: is required under max_cost_usd (it bounds what a call "
        "of 'open[temperature=0.2]' can cost)"
    )
