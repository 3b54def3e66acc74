"""Every message between the calls' process (the parent) and the worker (the child), as frozen
dataclasses; each crosses the pipe pickled, framed by multiprocessing.connection.

The parent sends, per run:

    OpenRun                      the store's URI and the parent's context
    BeginCalls                   once the runs exist: the experiment, its plan and checks
    TraceCall ...                one per finished call: the worker scores it, keeps it, traces it
    Ask[T] ...                   a store task, done once every trace before it is written;
                                 answered by Answer(T) or Raised
    Now(EndRuns)                 done at once, beside whatever runs (a user abandons the wait)
    EndRun                       answered by RunEnded; the worker is then free for another run

The worker sends Hello first (its protocol version, checked by the parent), ServerAway at once
when the tracking server stayed away past its bound, and the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from ..config import LoadedExperiment
    from ..plan import Plan, Variant
    from ..prompt_set import PromptSetFile
    from ..providers import Provider
    from ..providers.spec import ProviderSpec
    from ..registry.registration import Registration  # noqa: F401 - in a string below
    from ..report import Comparison
    from ..run_types import Skipped
    from ..scoring import CaseChecks
    from ..scoring.judge import Judged
    from ..types import CallRecord

# raised whenever a message's fields or meaning change: a worker kept from another llmflow
# (a pooled child outliving an upgrade in a notebook) is refused at the handshake
PROTOCOL_VERSION = 1

T_co = TypeVar("T_co", covariant=True)  # the answer's type


# --- the worker's first words -------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    protocol: int


# --- the parent's stream: no answer each --------------------------------------------------


@dataclass(frozen=True)
class OpenRun:
    """A run begins: where its store is, what its checks and report need imported, and the
    parent's working directory, environment and added providers (a worker kept from an earlier
    run works as the parent does now)."""

    tracking_uri: str
    check_types: tuple[str, ...] = ()
    report: bool = False
    cwd: str | None = None
    environ: dict[str, str] | None = None
    providers: tuple[ProviderSpec, ...] = ()


@dataclass(frozen=True)
class BeginCalls:
    """The runs exist: what the traces and the finish need to know of the experiment. `loaded`
    comes without its prompts and `plan` without its cases: each call carries its own, and
    `checks` says how each case is checked."""

    experiment_id: str
    parent_run_id: str
    loaded: LoadedExperiment
    plan: Plan
    checks: dict[str, CaseChecks] | None


@dataclass(frozen=True)
class TraceCall:
    """A finished call: the worker scores it, keeps it for the finish and writes its trace."""

    record: CallRecord
    run_id: str


@dataclass(frozen=True)
class EndRun:
    """The run is over for the worker; answered by RunEnded."""


@dataclass(frozen=True)
class Now:
    """`request` done at once, beside any trace or task the worker is busy with."""

    request: EndRuns


# --- the parent's asks: each answered, in order ---------------------------------------------


@dataclass(frozen=True)
class Ask(Generic[T_co]):
    """A store task whose answer is a T (worker/handlers.py holds one handler per kind)."""


@dataclass(frozen=True)
class OpenStore(Ask[str]):
    """Open and check the store; the answer is its URI as MLflow resolved it."""

    tracking_uri: str


@dataclass(frozen=True)
class ExperimentId(Ask[str]):
    name: str


@dataclass(frozen=True)
class CheckResumable(Ask[None]):
    parent_run_id: str
    experiment: str


@dataclass(frozen=True)
class OpenRuns(Ask["tuple[str, dict[str, str]]"]):
    """The parent run and one run per variant; the answer: the parent's id, and each variant's
    run id by variant id. `loaded` comes without its prompts: `prompt_set` is their file."""

    experiment_id: str
    loaded: LoadedExperiment
    prompt_set: PromptSetFile
    variants: tuple[tuple[Variant, dict[str, object]], ...]  # each with its params
    system_prompt: str | None
    version: str


@dataclass(frozen=True)
class Reopen(Ask[None]):
    parent_run_id: str
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class EndRuns(Ask[None]):
    run_ids: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class Resume(Ask[int]):
    """The journaled calls of a resumed run: the worker keeps them for the finish and writes
    the traces a kill prevented; the answer is how many it writes."""

    run_ids: dict[str, str]
    records: tuple[CallRecord, ...]


@dataclass(frozen=True)
class TracesWritten(Ask["TraceCount"]):
    """Once every trace sent before is written: how it went."""


@dataclass(frozen=True)
class FinishRun(Ask["Finished"]):
    """Finish every run with the calls the worker kept (from TraceCall and Resume) and what
    only the parent knows: the finish crosses the pipe once, and its report is rendered here."""

    run_ids: dict[str, str]
    status: str
    skipped: tuple[Skipped, ...]
    judged: Judged | None
    trained: dict[str, Provider]  # models trained in the run log themselves on their run
    resumed_calls: int
    journal_dir: Path | None
    report_dir: Path | None  # the user's copy of the report; it always goes into MLflow


@dataclass(frozen=True)
class Register(Ask["Registration"]):
    loaded: LoadedExperiment
    plan: Plan
    register_all: bool
    comparison: Comparison | None


# --- the worker's answers --------------------------------------------------------------------


@dataclass(frozen=True)
class TraceCount:
    written: int
    failure_reason: str  # why the first trace that failed did; "" when none did


@dataclass(frozen=True)
class Finished:
    """A finished run, as the parent reports it."""

    comparison: Comparison
    traces: TraceCount  # as they stood before the finish began
    problems: tuple[str, ...] = ()
    headline: tuple[str, ...] = ()  # the report's first findings
    report_stored: bool = False


@dataclass(frozen=True)
class Answer:
    value: object
    now: bool = False  # the answer to a Now


@dataclass(frozen=True)
class Raised:
    error: BaseException
    now: bool = False


@dataclass(frozen=True)
class ServerAway:
    """The tracking server stayed away past the bound: the run's other traces are lost."""

    reason: str


@dataclass(frozen=True)
class Written:
    """How many of the run's calls the worker is done with (traces written or failed), after
    each batch: the parent sends no more calls while too many wait, so that a run whose traces
    are written slower than its calls come keeps a bounded backlog, not every record."""

    calls: int


@dataclass(frozen=True)
class RunEnded:
    traces: TraceCount


StreamMessage = OpenRun | BeginCalls | TraceCall | EndRun | Now
Request = StreamMessage | Ask[object]
Reply = Hello | Answer | Raised | ServerAway | Written | RunEnded

ASKS: tuple[type[Ask[object]], ...] = (
    OpenStore,
    ExperimentId,
    CheckResumable,
    OpenRuns,
    Reopen,
    EndRuns,
    Resume,
    TracesWritten,
    FinishRun,
    Register,
)

__all__ = [
    "ASKS",
    "PROTOCOL_VERSION",
    "Answer",
    "Ask",
    "BeginCalls",
    "CheckResumable",
    "EndRun",
    "EndRuns",
    "ExperimentId",
    "FinishRun",
    "Finished",
    "Hello",
    "Now",
    "OpenRun",
    "OpenRuns",
    "OpenStore",
    "Raised",
    "Register",
    "Reopen",
    "Reply",
    "Request",
    "Resume",
    "RunEnded",
    "ServerAway",
    "StreamMessage",
    "TraceCall",
    "TraceCount",
    "TracesWritten",
]
