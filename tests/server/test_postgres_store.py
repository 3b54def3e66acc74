"""PostgreSQL as the tracking store itself, without a server in front of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmflow.tracking.assessments import log_scores, score_of
from tests.server.servers import Postgres
from tests.tracking.test_assessments import SCORES, written_traces

pytestmark = pytest.mark.server


def test_scores_go_in_one_statement_through_psycopg(tmp_path: Path, postgres: Postgres):
    """The one-statement insert of the scores, with psycopg's named parameters where sqlite
    takes positional ones."""
    client, trace_ids = written_traces(tmp_path, postgres.create_database("scores"), 2)
    log_scores(client, [(trace_id, score) for trace_id in trace_ids for score in SCORES])
    found = client.get_trace(trace_ids[0]).info.assessments
    assert {a.name: score_of(a) for a in found} == {s.name: s for s in SCORES}
