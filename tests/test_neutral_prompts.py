"""The text llmflow itself puts into prompts names no domain: a classification of sentiment reads
as naturally as one of support tickets, and the local model frames any question."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmflow.config import load_experiment
from llmflow.plan import build_plan
from llmflow.pricing import Pricer
from llmflow.providers.local import render_prompt
from llmflow.providers.openai_compat import OpenAICompatProvider
from llmflow.runner import Runner
from llmflow.types import Message
from tests.helpers import write_experiment

SENTIMENT = [
    {"id": "r1", "user": "I loved every minute of this film.", "expected": "positive"},
    {"id": "r2", "user": "The plot dragged and the ending fell flat.", "expected": "negative"},
]


def sent_messages(tmp_path: Path, fake, **fields) -> list[list[dict]]:
    """The messages each call of a sentiment classification sent to the server, as received."""
    model = {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake.url}/v1"}
    path = write_experiment(
        tmp_path,
        [model],
        task="classify",
        labels=["positive", "negative"],
        prompts=SENTIMENT,
        **fields,
    )
    plan = build_plan(load_experiment(path))

    async def go() -> None:
        variant = plan.variants[0]
        provider = OpenAICompatProvider(
            variant.model, api_key="test-openai-key", base_url=variant.entry.base_url
        )
        runner = Runner(
            {variant.id: provider},
            {variant.id: Pricer(variant.entry)},
            concurrency=1,
            on_record=lambda record: None,
        )
        try:
            await runner.run(plan.calls())
        finally:
            await provider.aclose()

    asyncio.run(go())
    return [r.body["messages"] for r in fake.generation_requests()]


def test_a_sentiment_classification_gets_a_neutral_label_instruction(tmp_path, fake_openai):
    sent = sent_messages(tmp_path, fake_openai)
    assert len(sent) == 2
    for messages, prompt in zip(sent, SENTIMENT, strict=True):
        assert messages == [
            {
                "role": "system",
                "content": "Classify the text into exactly one of these labels: positive, "
                "negative. Answer with the label only.",
            },
            {"role": "user", "content": prompt["user"]},
        ]


def test_the_experiment_file_sets_the_instruction(tmp_path, fake_openai):
    own = "Is this film review positive or negative? Answer with one word."
    sent = sent_messages(tmp_path, fake_openai, system=own)
    assert [messages[0] for messages in sent] == [{"role": "system", "content": own}] * 2


def test_the_local_models_default_context_names_no_domain():
    prompt = render_prompt((Message("user", "Was this review positive?"),), None)
    assert prompt == (
        "Questions answered briefly by an expert.\n\nQuestion: Was this review positive?\nAnswer:"
    )
