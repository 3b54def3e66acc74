"""llmflow's ROUGE-L F1 against Google's rouge-score (a dev dependency), the reference it
follows: the same value on answers and references of every shape a run meets."""

from __future__ import annotations

import random

import pytest

from llmflow.scoring.rouge import rouge_l_f1, tokens

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

PAIRS = [
    ("Paris", "Paris"),
    ("Paris", "paris."),
    ("Paris", "The capital of France is Paris."),
    ("The cat sat on the mat", "the mat sat on the cat"),
    ("Echo: Prompt number 7", "Echo: Prompt number 7"),
    ("", "anything"),
    ("anything", ""),
    ("...", "!!!"),
    ("Lyon", "Paris"),
    ("naïve café in São Paulo", "naive cafe in Sao Paulo"),  # non-ASCII letters separate words
    ("Straße", "strasse"),
    ("İstanbul", "istanbul"),  # its lower() adds a combining dot
    ("3.14159 is pi", "pi is 3.14159"),
    ('{"answer": 42}', "answer 42"),
    ("line one\nline two\r\nline three", "line one line two line three"),
    ("a b c d e f g", "g f e d c b a"),
    ("東京は日本の首都です", "東京"),  # no token at all
    ("tabs\tand   spaces", "tabs and spaces"),
]


def reference(expected: str, answer: str) -> float:
    return rouge_scorer.RougeScorer(["rougeL"]).score(expected, answer)["rougeL"].fmeasure


@pytest.mark.parametrize(("expected", "answer"), PAIRS)
def test_rouge_l_equals_rouge_score(expected: str, answer: str):
    assert rouge_l_f1(expected, answer) == pytest.approx(reference(expected, answer), abs=1e-12)


def test_rouge_l_equals_rouge_score_on_random_texts():
    """Texts drawn from a small vocabulary (so that they share words) with punctuation, case and
    repeats: the LCS is exercised on lengths up to 60 tokens."""
    chance = random.Random(7)
    vocabulary = ["the", "The", "cat", "sat", "on", "mat,", "a", "dog!", "Paris", "42", "x-ray"]
    for _ in range(300):
        expected = " ".join(chance.choices(vocabulary, k=chance.randint(0, 60)))
        answer = " ".join(chance.choices(vocabulary, k=chance.randint(0, 60)))
        assert rouge_l_f1(expected, answer) == pytest.approx(reference(expected, answer), abs=1e-12)


def test_tokens_keep_only_ascii_letters_and_digits():
    assert tokens("X-ray, 42 cafés!") == ["x", "ray", "42", "caf", "s"]
