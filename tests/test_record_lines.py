"""A CallRecord (and a Completion) survive their one (de)serialisation, record_lines.py, through
JSON, whatever they hold; and a calls.json row gives back what it keeps of a call."""

import json

from hypothesis import given
from hypothesis import strategies as st

from llmflow.record_lines import (
    completion_from_dict,
    completion_to_dict,
    record_from_dict,
    record_to_dict,
)
from llmflow.tracking.calls_table import calls_table, records_from_rows
from llmflow.types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage

text = st.text()  # any unicode: U+2028, lone surrogates excluded by hypothesis' default
maybe_int = st.none() | st.integers(min_value=0, max_value=10**9)
maybe_float = st.none() | st.floats(allow_nan=False, allow_infinity=False)
details = st.dictionaries(
    st.text(max_size=8), st.integers() | st.text() | st.booleans(), max_size=3
)
usages = st.builds(
    Usage,
    input_tokens=maybe_int,
    output_tokens=maybe_int,
    reasoning_tokens=st.integers(0, 1000),
    cached_input_tokens=st.integers(0, 1000),
    cache_write_input_tokens=st.integers(0, 1000),
    cache_write_1h_input_tokens=st.integers(0, 1000),
    details=details,
)
completions = st.builds(
    Completion,
    text=text,
    usage=usages,
    finish_reason=st.none() | text,
    model_version=st.none() | text,
)
settings = st.builds(
    GenerationSettings,
    temperature=maybe_float,
    max_tokens=maybe_int,
    top_p=maybe_float,
    seed=maybe_int,
    stop=st.tuples() | st.tuples(text) | st.tuples(text, text),
    stream=st.booleans(),
)
records = st.builds(
    CallRecord,
    variant_id=text,
    case_id=text,
    repeat=st.integers(-1, 100),
    messages=st.lists(
        st.builds(Message, role=st.sampled_from(["system", "user", "assistant"]), content=text),
        max_size=3,
    ).map(tuple),
    settings=settings,
    completion=st.none() | completions,
    timing=st.none()
    | st.builds(
        Timing,
        latency_s=st.floats(0, 1e4),
        ttft_s=maybe_float,
        started_ns=st.integers(0, 2**63),
        ended_ns=st.integers(0, 2**63),
    ),
    cost=st.none()
    | st.builds(
        Cost,
        kind=st.sampled_from(["priced", "local", "unpriced"]),
        usd=maybe_float,
        input_usd=maybe_float,
        output_usd=maybe_float,
        source=text,
    ),
    error_type=st.none() | text,
    error_message=st.none() | text,
    attempts=st.integers(1, 10),
    cached=st.booleans(),
    batch_job=st.none() | text,
    batch_wall_s=maybe_float,
)


@given(records)
def test_a_record_survives_json(record: CallRecord):
    line = json.dumps(record_to_dict(record), ensure_ascii=False)
    assert record_from_dict(json.loads(line)) == record


@given(completions)
def test_a_completion_survives_json(completion: Completion):
    assert (
        completion_from_dict(json.loads(json.dumps(completion_to_dict(completion)))) == completion
    )


def test_a_calls_table_row_gives_back_what_it_keeps():
    record = CallRecord(
        variant_id="v",
        case_id="q1",
        repeat=2,
        messages=(Message("system", "Be brief."), Message("user", "Hi")),
        settings=GenerationSettings(),
        completion=Completion("Hello.", Usage(12, 30)),
        timing=Timing(0.5, 0.1, 0, 0),
        cost=Cost("priced", 0.0001),
        attempts=3,
        cached=True,
    )
    columns = calls_table([record])
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    (back,) = records_from_rows("v", rows)
    assert back == record  # every field the table keeps; settings and the clock are defaults
