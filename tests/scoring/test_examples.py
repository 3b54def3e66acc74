"""The shipped examples load, with their checks."""

from pathlib import Path

from llmflow.config import load_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quality_example_checks_every_prompt_offline():
    loaded = load_experiment(EXAMPLES / "quality.yaml")
    assert all(p.expected for p in loaded.prompts)
    mentions = next(s for s in loaded.config.scorers if s.name == "mentions-expected")
    assert mentions.value == "{expected}"  # one check reads each prompt's own reference
    assert {m.provider for m in loaded.config.models} == {"local"}
    assert "judge" not in {s.type for s in loaded.config.scorers}


def test_compare_example_has_references_and_a_gemini_judge():
    loaded = load_experiment(EXAMPLES / "compare.yaml")
    assert all(p.expected for p in loaded.prompts)
    (judge,) = [s for s in loaded.config.scorers if s.type == "judge"]
    assert judge.judge_entry().provider == "gemini"
