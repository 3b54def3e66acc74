"""The report's detail table: each cell in a unit that shows its value, and n/a where a number
does not apply."""

from __future__ import annotations

import dataclasses

from llmflow.report.render import _tables
from llmflow.types import Timing, Usage
from tests.report.builders import NO_USAGE, report_data, variant


def details(*variants) -> dict[str, dict[str, str]]:
    _, header, rows = _tables(report_data(*variants))
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def streamed(name: str, ttft_s: float, latency_s: float, output_tokens: int):
    run = variant(name, [latency_s], usages=[Usage(10, output_tokens)])
    timing = Timing(latency_s, ttft_s, 0, int(latency_s * 1e9))
    records = [dataclasses.replace(r, timing=timing) for r in run.records]
    return dataclasses.replace(run, records=records)


def test_a_time_per_token_of_microseconds_is_shown_in_milliseconds():
    # 0.1 s after the first token for 3,847 more tokens: 2.6e-05 s a token
    cells = details(streamed("fast", 0.0, 0.1, 3848), streamed("slow", 0.1, 0.6, 3))["fast"]
    assert cells["TPOT (ms)"] == "0.026"
    assert details(streamed("slow", 0.1, 0.6, 3))["slow"]["TPOT (ms)"] == "250"


def test_tokens_of_a_traditional_model_do_not_apply():
    classic = variant("tfidf-logreg", [0.003, 0.004], usages=[NO_USAGE, NO_USAGE])
    classic.params["provider"] = "sklearn"
    llm = variant("llama", [0.1, 0.2], usages=[NO_USAGE, NO_USAGE])
    cells = details(classic, llm)
    assert cells["tfidf-logreg"]["no token count"] == "n/a"
    assert cells["llama"]["no token count"] == "2"
