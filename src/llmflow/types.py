"""The plain data that flows between llmflow's layers. No behaviour beyond derived fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
CostKind = Literal["priced", "batch", "local", "unpriced"]  # batch: at a batch API's discount


@dataclass(frozen=True, slots=True)  # slots: one per prompt, 100,000s in a big run
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    """What is sent to the model besides the messages. None means "provider default, not sent"."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = True

    def sent(self) -> dict[str, Any]:
        """The settings actually sent, as a flat dict (used for params and cache keys)."""
        values = {k: v for k, v in asdict(self).items() if v is not None and v != ()}
        if "stop" in values:
            values["stop"] = list(values["stop"])
        return values


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them.

    `input_tokens` counts every prompt token, cached ones included: `cached_input_tokens` (read
    from a prompt cache) and `cache_write_input_tokens` (written to one, of which
    `cache_write_1h_input_tokens` with a one-hour lifetime) are parts of it, each billed at its
    own rate. `output_tokens` counts every generated token, reasoning/thinking included
    (`reasoning_tokens` is a part of it), because providers bill thinking as output.
    None means the provider did not report that count.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    cache_write_1h_input_tokens: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int | None:
        """input + output; None when either is unknown (a half-known sum would look measured)."""
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Delta:
    """One piece of a provider's answer: text, and/or the usage (usually on the last piece)."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class Timing:
    """Client-side wall-clock timing of one call.

    latency_s: from sending the request to the last byte. ttft_s: to the first non-empty text
    (streaming calls only). started_ns/ended_ns: epoch nanoseconds, for traces.
    """

    latency_s: float
    ttft_s: float | None
    started_ns: int
    ended_ns: int


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class Cost:
    """Estimated cost of one call. `usd` is None exactly when `kind` is "unpriced"."""

    kind: CostKind
    usd: float | None
    input_usd: float | None = None
    output_usd: float | None = None
    source: str = ""


@dataclass(frozen=True)
class CallRecord:
    """Everything known about one call, successful or not."""

    variant_id: str
    case_id: str
    repeat: int
    messages: tuple[Message, ...]
    settings: GenerationSettings
    completion: Completion | None
    timing: Timing | None
    cost: Cost | None
    error_type: str | None = None
    error_message: str | None = None
    attempts: int = 1
    cached: bool = False
    # answered through a provider's batch API (llmflow.batch): the job, and its wall time from
    # creation to end; such a call has no latency (timing None)
    batch_job: str | None = None
    batch_wall_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def warmup(self) -> bool:
        """Warmup calls (repeat -1, -2, ...) are made first and left out of the statistics."""
        return self.repeat < 0

    @property
    def usage(self) -> Usage:
        return self.completion.usage if self.completion else Usage()

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (latency - ttft) / (output_tokens - 1)."""
        if not self.timing or self.timing.ttft_s is None:
            return None
        out = self.usage.output_tokens
        if not out or out < 2:
            return None
        return (self.timing.latency_s - self.timing.ttft_s) / (out - 1)

    @property
    def output_tokens_per_s(self) -> float | None:
        out = self.usage.output_tokens
        if not self.timing or out is None or self.timing.latency_s <= 0:
            return None
        return out / self.timing.latency_s
