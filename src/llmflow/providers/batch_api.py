"""What llmflow needs of a provider's batch API, whatever its wire format (openai_batch.py,
gemini_batch.py implement it; llmflow.batch drives it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..types import Delta, GenerationSettings, Message

# provider -> "module:class" of its batch API, imported when a batched variant runs (the
# providers config.models.BATCH_PROVIDERS accepts `batch:` for)
BATCH_ADAPTERS = {
    "openai": "llmflow.providers.openai_batch:OpenAIBatch",
    "gemini": "llmflow.providers.gemini_batch:GeminiBatch",
}


@dataclass(frozen=True)
class JobState:
    """A job as the provider last described it."""

    state: str  # the provider's own word (in_progress, JOB_STATE_RUNNING, ...)
    ended: bool
    done: int | None = None  # requests finished, where the provider says
    total: int | None = None
    failure: str | None = None  # why the whole job failed (validation), in the provider's words


@dataclass(frozen=True)
class Answer:
    """One request's outcome inside a job: an answer, or the provider's reason it has none."""

    key: str
    delta: Delta | None = None
    error: str | None = None
    expired: bool = False  # not run before the job ended (expired, cancelled)
    service_tier: str | None = None


class BatchAPI(Protocol):
    provider: str
    max_requests: int  # per job
    max_bytes: int  # of a job's requests

    def request(
        self, key: str, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> bytes:
        """One request of a job, as a JSON line."""
        ...

    async def submit(self, requests: list[bytes], label: str) -> str:
        """Create a job of these requests; its id. `label` names it at the provider, so that
        `find` sees a job whose id a killed process never wrote down."""
        ...

    async def find(self, label: str) -> str | None: ...

    async def state(self, job_id: str) -> JobState: ...

    async def answers(self, job_id: str) -> list[Answer]:
        """Every request's outcome, once the job has ended (in no particular order)."""
        ...

    async def cancel(self, job_id: str) -> None: ...
