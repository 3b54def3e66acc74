"""The written interpretation and report.md on hand-built calls: fixed latencies, so a loaded
machine cannot change a verdict."""

import json
import re
from pathlib import Path

from llmflow.report import baseline, to_json
from llmflow.report.interpret import interpret
from llmflow.report.render import write_report
from llmflow.types import Usage
from tests.report.builders import NO_USAGE, report_data, variant

FAST = [0.010, 0.011, 0.012, 0.013, 0.015, 0.016, 0.017, 0.018]  # median 0.014
SLOW = [0.120, 0.121, 0.122, 0.123, 0.125, 0.126, 0.127, 0.128]  # median 0.124


def text_of(data) -> tuple[str, str]:
    findings, next_steps = interpret(data)
    return "\n".join(findings), "\n".join(next_steps)


def test_faster_variant_is_ranked_and_named():
    data = report_data(variant("slow", SLOW), variant("fast", FAST))
    findings, _ = text_of(data)
    assert (
        "**fast** is the fastest: median latency 0.014 s against 0.124 s for slow, 8.88x faster"
        in findings
    )
    assert "sign test on the 8 prompts both answered, fast slower on 0 and faster on 8" in findings
    results = {r["variant_id"]: r for r in json.loads(to_json(data.comparison))}
    assert results["fast"]["latency_p50_ci_high_s"] < results["slow"]["latency_p50_ci_low_s"]


def test_prompts_that_lean_both_ways_are_not_called_different():
    twin = [0.030, 0.034, 0.031, 0.035, 0.032, 0.036]  # median 0.033
    other = [0.031, 0.033, 0.032, 0.034, 0.033, 0.035]  # faster on 3 prompts, slower on 3
    data = report_data(variant("twin-a", twin), variant("twin-b", other))
    findings, next_steps = text_of(data)
    assert "has the lowest median latency (0.033 s) but is **not distinguishable**" in findings
    assert "slower on 3 and faster on 3: p = 1" in findings
    assert "is the fastest" not in findings
    assert "To tell twin-a and twin-b apart on latency: this run could detect" in next_steps


def test_a_small_shift_on_every_prompt_is_seen_by_the_paired_test():
    """0.5 ms slower on each of 8 prompts whose latencies spread over 6 ms: the intervals of
    the medians overlap, the sign test sees 8 of 8."""
    twin = [0.030, 0.034, 0.031, 0.035, 0.032, 0.036, 0.030, 0.033]
    data = report_data(variant("twin-a", twin), variant("twin-b", [t + 0.0005 for t in twin]))
    findings, _ = text_of(data)
    assert "**twin-a** is the fastest" in findings
    assert "twin-a slower on 0 and faster on 8: p = 0.0078" in findings


def test_sweep_shows_latency_rising_with_max_tokens():
    data = report_data(
        *(
            variant(
                f"m[temperature=0.2,max_tokens={n}]",
                latencies,
                model="m",
                swept={"temperature": 0.2, "max_tokens": n},
            )
            for n, latencies in ((60, SLOW), (5, FAST))
        )
    )
    findings, _ = text_of(data)
    assert (
        "Median latency of m (temperature=0.2) rises with max_tokens (5: 0.014 s, 60: 0.124 s)."
        in findings
    )


def test_baseline_marks_a_change_beyond_chance():
    before = report_data(variant("a", FAST))
    after = report_data(variant("a", [t + 0.140 for t in FAST]))
    shown = baseline.to_markdown(baseline.deltas(before, after), "base", "now")
    line = next(x for x in shown.splitlines() if x.startswith("| a |"))
    assert line == "| a | 0.014 -> 0.154 | +1000.0% * | 336 -> 336 | unpriced -> unpriced |"
    assert "a, latency: sign test on the 8 prompts both answered" in shown


def test_baseline_does_not_mark_a_change_the_prompts_do_not_agree_on():
    before = report_data(variant("a", FAST))
    mixed = [t + (0.002 if i % 2 else -0.001) for i, t in enumerate(FAST)]  # +2 ms, -1 ms, ...
    after = report_data(variant("a", mixed))
    (delta,) = baseline.deltas(before, after)
    assert not delta.significant("latency_s")
    shown = baseline.to_markdown([delta], "base", "now")
    assert re.search(r"^\| a \| 0\.014 -> 0\.0\d\d \| [+-]\d+\.\d% \|", shown, re.M), shown
    assert "a slower on 4 and faster on 4: p = 1" in shown


def test_empty_answers_are_warned_in_the_interpretation():
    data = report_data(
        variant("gemma-3-270m (0.7)", FAST[:4], texts=["", "Paris.", " ", ""]),
        variant("other", SLOW[:4]),
    )
    findings, next_steps = text_of(data)
    assert "**3 of 4 answers of gemma-3-270m (0.7) were empty**" in findings
    assert "other were empty" not in findings
    assert "Read gemma-3-270m (0.7)'s empty answers in responses.md" in next_steps


def test_unknown_tokens_are_said_and_never_compared():
    data = report_data(
        variant("llama", FAST[:3], usages=[NO_USAGE, Usage(12, 900), NO_USAGE]),
        variant("short", SLOW[:3], usages=[Usage(12, 5)] * 3),
        variant("long", SLOW[:3], usages=[Usage(12, 50)] * 3),
    )
    findings, _ = text_of(data)
    assert (
        "llama: tokens not reported by the server for 2 of 3 calls: its token counts are "
        "unknown (-), so they are not compared." in findings
    )
    assert "long produced the most output: 50 tokens per call on average, against 5 for short" in (
        findings
    )
    assert "llama produced" not in findings and "for llama" not in findings


def test_no_token_comparison_when_only_one_variant_has_counts():
    data = report_data(
        variant("llama", FAST[:2], usages=[NO_USAGE] * 2), variant("counted", SLOW[:2])
    )
    findings, _ = text_of(data)
    assert "produced the most output" not in findings
    assert "tokens not reported by the server for 2 of 2 calls" in findings


def test_report_files_warn_of_empty_answers_and_unknown_tokens(tmp_path: Path):
    data = report_data(
        variant("gemma-3-270m (0.7)", FAST[:3], texts=["", "Hi.", "Hello."]),
        variant("llama", SLOW[:3], usages=[NO_USAGE] * 3),
    )
    write_report(data, tmp_path)
    md = (tmp_path / "report.md").read_text()
    tables = md.split("## Interpretation")[0]
    assert "- **Warning**: 1 of 3 answers of gemma-3-270m (0.7) were empty" in tables
    assert "- **Warning**: tokens not reported by the server for 3 of 3 calls of llama" in tables
    llama = next(line for line in md.splitlines() if line.startswith("| llama |"))
    assert llama.split(" | ")[4] == "-", llama  # Total tokens
    assert "**1 of 3 answers of gemma-3-270m (0.7) were empty**" in md.split("## Interpretation")[1]
    page = (tmp_path / "report.html").read_text()
    assert "<strong>Warning</strong>: 1 of 3 answers of gemma-3-270m (0.7) were empty" in page
    rows = {r["variant_id"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    assert rows["llama"]["total_tokens"] is None and rows["llama"]["n_usage_missing"] == 3
    assert rows["gemma-3-270m (0.7)"]["n_empty"] == 1
    header, *lines = (tmp_path / "results.csv").read_text().splitlines()
    assert "n_empty" in header.split(",") and "n_usage_missing" in header.split(",")


def test_tokens_plot_has_no_bar_for_an_unknown_count(tmp_path: Path):
    data = report_data(variant("llama", SLOW[:3], usages=[NO_USAGE] * 3))
    files = {path.name for path in write_report(data, tmp_path)}
    assert "tokens.png" not in files and "latency_distribution.png" in files
    assert not re.search(r"tokens per call on average", (tmp_path / "report.md").read_text())


def test_equal_output_is_called_the_same_not_most_and_least():
    findings, _ = text_of(report_data(variant("a", FAST[:2]), variant("b", SLOW[:2])))
    assert "a, b produced the same output: 30 tokens per call on average." in findings
    assert "the most output" not in findings


def test_cheaper_and_fastest_come_from_the_paired_tests():
    from dataclasses import replace as with_fields

    from llmflow.types import Cost

    def priced(name: str, latencies: list[float], usd: float):
        built = variant(name, latencies)
        records = [with_fields(r, cost=Cost("priced", usd)) for r in built.records]
        return with_fields(built, records=records, params={**built.params, "cost_model": "genai"})

    data = report_data(priced("lean", FAST, 0.0001), priced("dear", SLOW, 0.0003))
    findings, next_steps = text_of(data)
    assert "lean cheaper beyond chance: sign test on the 8 prompts both answered" in findings
    assert "lean is both faster and cheaper per call than every other variant here" in next_steps
