"""ROUGE-L F1 (Lin, 2004) as Google's rouge-score computes it without a stemmer: both texts
lower-cased, every run of characters other than a-z and 0-9 a separator (so letters outside
ASCII separate words too), then the longest common subsequence of the two token lists.

Why not rouge-score itself: it imports nltk at module level (for sentence splitting and
stemming, neither used by ROUGE-L without a stemmer), which imports scipy and scikit-learn:
about 3 s, and 90 MB more in the trace writer (bench/quality.py: a 1,000-call run with five
scorers peaked at 409 MB with rouge-score, 320 MB without), for these few lines.
tests/scoring/test_rouge.py checks the result equals rouge-score's on a corpus of pairs.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def tokens(text: str) -> list[str]:
    return [token for token in _SEPARATORS.split(text.lower()) if token]


def rouge_l_f1(reference: str, answer: str) -> float:
    """The harmonic mean of the LCS's share of the answer's tokens and of the reference's."""
    wanted, given = tokens(reference), tokens(answer)
    if not wanted or not given:
        return 0.0
    common = _lcs_length(wanted, given)
    if common == 0:
        return 0.0
    precision, recall = common / len(given), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Dynamic programming over one row at a time: O(len(a) * len(b)) time, O(len(b)) memory."""
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]
