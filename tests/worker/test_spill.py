"""The worker keeps a run's calls on disk (worker/spill.py), read back losslessly, by variant."""

from __future__ import annotations

import dataclasses

from llmflow.types import Cost
from llmflow.worker.spill import RecordSpill
from tests.helpers import call_record


def test_the_calls_come_back_whole_by_variant_while_more_arrive():
    spill = RecordSpill()
    odd = call_record("a", 0.5, text="line\u2028separator \u00e9 \U0001f600", case_id="q1")
    failed = dataclasses.replace(
        call_record("b", 0.1, case_id="q2", cost=Cost("priced", 0.25)),
        completion=None,
        error_type="ProviderUnavailable",
        error_message="500",
    )
    spill.add(odd)
    spill.add(failed)
    reading = spill.iter("a")
    assert next(reading) == odd
    later = call_record("a", 0.7, case_id="q3", repeat=2)
    spill.add(later)  # a read half-done moves nothing: the append goes on at the end
    reading.close()
    assert spill.by_variant() == {"a": [odd, later], "b": [failed]}
    assert (spill.count("a"), spill.count("b"), spill.count("c")) == (2, 1, 0)
    assert spill.records("c") == []
    spill.close()
    assert spill.by_variant() == {}


def test_many_calls_cross_the_read_chunks():
    spill = RecordSpill()
    calls = [call_record("a", i / 1000, text="x" * (i % 700), case_id=f"p{i}") for i in range(3000)]
    for record in calls:
        spill.add(record)
    assert spill.records("a") == calls


def test_the_finish_reads_a_variant_in_case_order_as_often_as_it_likes():
    spill = RecordSpill()
    calls = [call_record("a", 0.1, case_id=f"p{i % 5}", repeat=i // 5) for i in range(15)]
    for record in reversed(calls):
        spill.add(record)
    spill.add(call_record("b", 0.2))
    ordered = spill.ordered("a")
    expected = sorted(calls, key=lambda r: (r.case_id, r.repeat))
    assert len(ordered) == 15
    assert list(ordered) == expected and list(ordered) == expected  # each pass reads again
    assert list(spill.ordered("none")) == []
