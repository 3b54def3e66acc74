"""What `--resume` does with a batched variant's journaled calls: a request that errored or
expired inside its job, or whose job was never created, is sent again; every other call is
done. Only the last record of a call counts (a call sent again has two)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..journal import Resumed
from ..types import CallRecord

REQUEST_FAILED = "BatchRequestFailed"  # the provider answered the request with an error
EXPIRED = "BatchExpired"  # not run before its job expired or was cancelled
JOB_FAILED = "BatchJobFailed"  # the whole job failed (validation)
NOT_SUBMITTED = "BatchNotSubmitted"  # its job could not be created
SENT_AGAIN = frozenset({REQUEST_FAILED, EXPIRED, NOT_SUBMITTED})


def resendable(resumed: Resumed, batched: Iterable[str]) -> bool:
    """Whether a batched call of the journal is to be sent again: then even a run that ended
    FINISHED is resumed (a job's expired requests are the ordinary way to resume it)."""
    kept = {(r.variant_id, r.case_id, r.repeat) for r in for_resume(resumed, batched).records}
    return any((r.variant_id, r.case_id, r.repeat) not in kept for r in resumed.records)


def for_resume(resumed: Resumed, batched: Iterable[str]) -> Resumed:
    """The journal's records less those of batched variants that are to be sent again."""
    batched = set(batched)
    last: dict[tuple[str, str, int], CallRecord] = {}
    kept: list[CallRecord] = []
    for record in resumed.records:
        if record.variant_id in batched:
            last[(record.variant_id, record.case_id, record.repeat)] = record
        else:
            kept.append(record)
    kept += [r for r in last.values() if r.error_type not in SENT_AGAIN]
    return replace(resumed, records=kept)
