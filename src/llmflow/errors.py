"""The errors llmflow raises.

LlmflowError
├── ConfigError            a bad experiment file or option; the message names file and field
├── MissingCredentials     an API key is not in the environment; the message says which variable
├── TrackingError          the MLflow store cannot be reached or written
├── Interrupted            Ctrl-C, SIGTERM or SIGHUP during a run; says how the runs were ended
├── RunFailed              a failure after the MLflow runs were created; they were ended FAILED
├── VariantBroken          every call of a variant failed inside llmflow, not at the provider
├── BudgetExhausted        a call not sent: it could pass max_cost_usd (recorded on the call)
├── PromotionRefused       a gate failed or production skipped staging; `reasons`, one a line
├── ServerGone             the tracking server stopped answering mid-run; resume when it is back
└── ProviderError          a call to a provider failed; translated once, at the provider boundary
    ├── ProviderUnavailable    connection refused, DNS, server down                (retryable)
    ├── ProviderTimeout        no complete answer within timeout_s                 (retryable)
    ├── RateLimited            HTTP 429; carries retry_after in seconds if sent    (retryable)
    ├── ServerError            HTTP 5xx                                            (retryable)
    ├── AuthenticationError    HTTP 401/403: the key is wrong or lacks access
    ├── ModelNotFound          HTTP 404 for the model, or a model not pulled
    ├── BadRequest             HTTP 400/422: the provider rejected the request
    └── BadResponse            the answer could not be parsed
        └── StreamCutOff       a stream that ended before its finish marker           (retryable)
"""

from __future__ import annotations

from .redact import one_line, redact_url


class LlmflowError(Exception):
    """Base of every error llmflow raises on purpose."""

    def __reduce__(self) -> tuple:
        # rebuilt as it was, whatever its own __init__ takes: it crosses the trace writer's pipe
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[LlmflowError], args: tuple, state: dict) -> LlmflowError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(LlmflowError):
    """The experiment file or a command-line option is invalid."""


class MissingCredentials(LlmflowError):
    """A provider needs an API key that is not set in the environment."""


class TrackingError(LlmflowError):
    """The MLflow tracking store cannot be used."""


class Interrupted(LlmflowError):  # noqa: N818 - reads as what happened, like KeyboardInterrupt
    """Ctrl-C, SIGTERM or SIGHUP. `status` is what the runs were ended as (None: no run had
    been created yet); every finished call was kept, and `--resume` sends the others."""

    def __init__(self, parent_run_id: str | None, status: str | None, signal: str = "SIGINT"):
        if parent_run_id is None:
            message = f"interrupted ({signal}) before any MLflow run was created"
        elif status == "FINISHED":
            message = (
                f"interrupted ({signal}) after the last call; MLflow run {parent_run_id} was "
                "ended as FINISHED; registration, if asked for, did not run or did not finish"
            )
        else:
            message = f"interrupted ({signal}); MLflow run {parent_run_id} was ended as {status}"
        super().__init__(message)
        self.parent_run_id = parent_run_id if status != "FINISHED" else None
        self.status = status


class RunFailed(LlmflowError):
    """Something failed after the MLflow runs were created; they were ended as FAILED with every
    finished call, and `--resume` sends the others."""

    def __init__(self, parent_run_id: str, cause: BaseException) -> None:
        super().__init__(f"{_describe(cause)}; MLflow run {parent_run_id} was ended as FAILED")
        self.parent_run_id = parent_run_id


class VariantBroken(LlmflowError):
    """Every call of a variant failed with an error that is no provider's (a bug in llmflow or
    in an SDK): the run fails, rather than report N calls failed. Its cause is the first such
    error, whose traceback --debug shows."""

    def __init__(self, variant_id: str, first: BaseException) -> None:
        super().__init__(
            f"every call of {variant_id} failed inside llmflow, not at the provider "
            f"(first: {_describe(first)}): a bug; rerun with --debug for its traceback"
        )
        self.variant_id = variant_id


class BudgetExhausted(LlmflowError):
    """The call was not sent: it could have taken spending past max_cost_usd. The runner records
    it as the call's error (error_type BudgetExhausted); it is never raised out of a run."""


class PromotionRefused(LlmflowError):
    """A gate failed or the path to production skipped staging. `reasons` has one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class ServerGone(LlmflowError):
    """The tracking server stopped answering mid-run and did not come back in time: no call was
    sent after that, every finished call is in the journal, and the MLflow runs stay open for
    `--resume` (they could not be ended)."""

    def __init__(self, tracking_uri: str, n_calls: int, resume_command: str) -> None:
        super().__init__(
            f"the tracking server at {redact_url(tracking_uri)} stopped answering; your "
            f"{n_calls} finished calls are kept in the journal: resume with {resume_command}"
        )
        self.resume_command = resume_command


def _describe(error: BaseException) -> str:
    return one_line(str(error) if isinstance(error, LlmflowError) else error)


class ProviderError(LlmflowError):
    """A provider call failed. `retryable` says whether trying again may help."""

    retryable = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ProviderUnavailable(ProviderError):
    retryable = True


class ProviderTimeout(ProviderError):
    retryable = True


class RateLimited(ProviderError):
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = 429
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ServerError(ProviderError):
    retryable = True


class AuthenticationError(ProviderError):
    pass


class ModelNotFound(ProviderError):
    pass


class BadRequest(ProviderError):
    pass


class BadResponse(ProviderError):
    pass


class StreamCutOff(BadResponse):
    """The stream ended before the server said the answer was done; trying again may help."""

    retryable = True


def error_for_status(
    status_code: int, message: str, retry_after: float | None = None
) -> ProviderError:
    """Map an HTTP status from any provider to the error tree."""
    if status_code == 429:
        return RateLimited(message, retry_after=retry_after)
    if status_code in (401, 403):
        return AuthenticationError(message, status_code=status_code)
    if status_code == 404:
        return ModelNotFound(message, status_code=status_code)
    if status_code in (408, 504):
        return ProviderTimeout(message, status_code=status_code)
    if status_code >= 500:
        return ServerError(message, status_code=status_code)
    return BadRequest(message, status_code=status_code)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
