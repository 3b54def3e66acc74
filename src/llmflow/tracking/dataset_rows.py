"""One prompt <-> one record of an MLflow evaluation dataset. Pure: no MLflow import.

A record's `inputs` hold the user message (`user`, or its only key besides `system`, or a
`messages` list of one system and one user message) and the system message (`system`). Its
`expectations` map so:

- `expected_response` -> the prompt's `expected` (the reference that rouge-l, chrf and
  `{expected}` in a check read);
- `expected_facts` (a list of strings) -> a `contains-all` check named `expected_facts`: each
  fact must appear in the answer, ignoring case (literal, so stricter than a judge's reading);
- `llmflow_checks` -> the prompt's own `assert:` list, as `llmflow dataset push` wrote it.

Everything else (other inputs, `guidelines` and other expectations, the record's id) is kept
in the prompt's `metadata`, which the run stores with its prompt set. The prompt's id is the
record's `llmflow.id` tag (what a push kept), else the record's own id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..config import PromptCase
from ..config.validation_errors import describe_validation_error
from ..errors import ConfigError
from ..user_files import clip
from .schema import RECORD_ID_TAG, RECORD_METADATA_TAG, RECORD_POSITION_TAG

ID_TAG = RECORD_ID_TAG
POSITION_TAG = RECORD_POSITION_TAG  # the row's place in the file pushed: read back in order
METADATA_TAG = RECORD_METADATA_TAG  # a pushed prompt's own metadata, as JSON
EXPECTED = "expected_response"
FACTS = "expected_facts"
CHECKS = "llmflow_checks"
RECORD_ID = "mlflow.dataset_record_id"


def record_of(case: PromptCase, position: int) -> dict[str, Any]:
    """The dataset record that `llmflow dataset push` writes for a prompt."""
    inputs = {"user": case.user} | ({"system": case.system} if case.system is not None else {})
    expectations: dict[str, Any] = {}
    if case.expected is not None:
        expectations[EXPECTED] = case.expected
    if case.checks:
        expectations[CHECKS] = [
            c.model_dump(mode="json", by_alias=True, exclude_unset=True) for c in case.checks
        ]
    tags = {ID_TAG: case.id, POSITION_TAG: str(position)}
    if own := {k: v for k, v in (case.metadata or {}).items() if k != RECORD_ID}:
        tags[METADATA_TAG] = json.dumps(own, ensure_ascii=False, sort_keys=True)
    record: dict[str, Any] = {"inputs": inputs, "tags": tags}
    if expectations:
        record["expectations"] = expectations
    return record


def same_record(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a stored record already says what `wanted` (a record_of) says, wherever it is
    in the set (a record moved gets its new position by a merge, keeping its id)."""
    tags = stored.get("tags") or {}
    return (
        stored.get("inputs") == wanted["inputs"]
        and (stored.get("expectations") or {}) == wanted.get("expectations", {})
        and all(tags.get(k) == v for k, v in wanted["tags"].items() if k != POSITION_TAG)
        and (METADATA_TAG in tags) == (METADATA_TAG in wanted["tags"])
    )


def moved(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return (stored.get("tags") or {}).get(POSITION_TAG) != wanted["tags"][POSITION_TAG]


@dataclass(frozen=True)
class PushPlan:
    """What a push does to the records stored, so that each wanted record (a record_of) is
    there as it says, once."""

    stale: list[str]  # record ids to delete: changed prompts' old records, and --prune's
    merged: list[dict[str, Any]]  # records to merge: new or changed, then the moved ones
    written: int  # of `merged`, the new or changed ones (the rest only moved)
    removed: int  # records of ids no longer wanted (--prune)


def plan_push(
    stored: Sequence[Mapping[str, Any]], wanted: Sequence[dict[str, Any]], prune: bool
) -> PushPlan:
    by_id = {_id_of(r): r for r in stored}
    wanted_by_id = {w["tags"][ID_TAG]: w for w in wanted}
    unwanted = [r for r in stored if _id_of(r) not in wanted_by_id] if prune else []
    changed = [
        r
        for r in stored
        if _id_of(r) in wanted_by_id and not same_record(r, wanted_by_id[_id_of(r)])
    ]
    found = [(w, by_id.get(w["tags"][ID_TAG])) for w in wanted]
    written = [w for w, r in found if r is None or not same_record(r, w)]
    moved_only = [w for w, r in found if r is not None and same_record(r, w) and moved(r, w)]
    stale = [r["dataset_record_id"] for r in changed + unwanted]
    return PushPlan(stale, written + moved_only, len(written), len(unwanted))


def _id_of(record: Mapping[str, Any]) -> str | None:
    return (record.get("tags") or {}).get(ID_TAG)


def ordered(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records in the order pushed; records added otherwise after them, oldest first."""

    def key(record: Mapping[str, Any]) -> tuple[int, int, int]:
        position = (record.get("tags") or {}).get(POSITION_TAG, "")
        if position.isdigit():
            return 0, int(position), 0
        return 1, 0, int(record.get("created_time") or 0)

    return sorted(records, key=key)


def case_of(record: Mapping[str, Any], shown: str) -> PromptCase:
    """The prompt a record holds; ConfigError naming the record when it holds none."""
    record_id = str(record.get("dataset_record_id") or "")
    where = f"{shown}: record {record_id}"
    inputs = dict(record.get("inputs") or {})
    expectations = dict(record.get("expectations") or {})
    tags = record.get("tags") or {}
    user, system, other_inputs = _messages(inputs, where)
    row: dict[str, Any] = {"id": tags.get(ID_TAG) or record_id, "user": user}
    if system is not None:
        row["system"] = system
    if (expected := expectations.pop(EXPECTED, None)) is not None:
        row["expected"] = expected if isinstance(expected, str) else json.dumps(expected)
    if checks := _checks(expectations, where):
        row["assert"] = checks
    metadata = {RECORD_ID: record_id, **_own_metadata(tags, where)}
    metadata |= {f"inputs.{k}": v for k, v in other_inputs.items()}
    metadata |= {f"expectations.{k}": v for k, v in expectations.items()}
    row["metadata"] = metadata
    try:
        return PromptCase.of(row)
    except ValidationError as e:
        raise ConfigError(f"{where}: {describe_validation_error(e)}") from e


def _messages(inputs: dict[str, Any], where: str) -> tuple[Any, Any, dict[str, Any]]:
    """(user, system, the inputs left over)."""
    if "messages" in inputs and "user" not in inputs:
        return _chat(inputs.pop("messages"), where) + (inputs,)
    system = inputs.pop("system", None)
    if "user" in inputs:
        return inputs.pop("user"), system, inputs
    if len(inputs) == 1:
        return inputs.popitem()[1], system, {}
    keys = ", ".join(sorted(inputs)) or "none"
    raise ConfigError(
        f"{where}: inputs has keys {clip(keys, 120)}: name the user message `user` "
        "(and the system message `system`)"
    )


def _chat(messages: Any, where: str) -> tuple[Any, Any]:
    by_role: dict[str, list[Any]] = {}
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            by_role.setdefault(str(message.get("role")), []).append(message.get("content"))
    users, systems = by_role.pop("user", []), by_role.pop("system", [])
    if len(users) != 1 or len(systems) > 1 or by_role:
        raise ConfigError(
            f"{where}: inputs.messages: llmflow reads one user message and at most one system "
            "message"
        )
    return users[0], systems[0] if systems else None


def _checks(expectations: dict[str, Any], where: str) -> list[Any]:
    checks = expectations.pop(CHECKS, None) or []
    if not isinstance(checks, list):
        raise ConfigError(f"{where}: expectations.{CHECKS}: must be a list of checks")
    facts = expectations.get(FACTS)
    if isinstance(facts, list) and facts and all(isinstance(f, str) and f for f in facts):
        expectations.pop(FACTS)
        checks = [*checks, {"type": "contains-all", "value": facts, "name": FACTS}]
    return checks


def _own_metadata(tags: Mapping[str, str], where: str) -> dict[str, Any]:
    if METADATA_TAG not in tags:
        return {}
    try:
        own = json.loads(tags[METADATA_TAG])
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: tag {METADATA_TAG}: not valid JSON: {e.msg}") from e
    if not isinstance(own, dict):
        raise ConfigError(f"{where}: tag {METADATA_TAG}: must be a JSON object")
    return own
