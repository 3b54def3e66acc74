"""The fake servers' own hygiene: reset() leaves nothing of one test behind for the next."""

import dataclasses

import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Response

FAKES = {
    "anthropic": FakeAnthropic,
    "gemini": FakeGemini,
    "ollama": FakeOllama,
    "openai": FakeOpenAI,
}


def changed(value: object) -> object:
    """Some other value of the same kind; a knob of a new kind must be taught here."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 7
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, dict):
        return {} if value else {"x": 1.0}
    if isinstance(value, (set, list, tuple)):
        return type(value)() if value else type(value)(["x"])
    if value is None:
        return Response(status=418)
    if dataclasses.is_dataclass(value):  # a group of knobs: one of them changed
        flag = next(
            f.name for f in dataclasses.fields(value) if type(getattr(value, f.name)) is bool
        )
        return dataclasses.replace(value, **{flag: not getattr(value, flag)})
    raise AssertionError(f"teach changed() about {type(value).__name__}")


def state(fake: object) -> dict[str, object]:
    """Every attribute a test could have changed, private ones included (rng, queued faults)."""
    values = {k: v for k, v in vars(fake).items() if k not in {"_httpd", "_lock", "_init_args"}}
    values["_rng"] = values["_rng"].getstate()
    values["_queued_faults"] = list(values["_queued_faults"])
    return values


@pytest.mark.parametrize("name", sorted(FAKES))
def test_reset_restores_every_knob(name):
    fake, fresh = FAKES[name](), FAKES[name]()
    knobs = [k for k in vars(fake) if not k.startswith("_")]
    for knob in knobs:
        before = getattr(fake, knob)
        setattr(fake, knob, changed(before))
        assert getattr(fake, knob) != before, f"{knob} was not changed by the test"
    fake.model_delays["some-model"] = 3.0
    fake.inject("429", "timeout")
    fake._rng.random()
    fake._next_fault = lambda: "500"  # a test that patches a method on the instance
    assert state(fake) != state(fresh)
    fake.reset()
    assert state(fake) == state(fresh)


def test_reset_keeps_the_server_running():
    with FakeOpenAI() as fake:
        url = fake.url
        fake.reset()
        assert fake.url == url
