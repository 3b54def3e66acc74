"""The run journal: what a kill leaves behind is read back whole, and --resume finds the right
journal."""

import json
import os
from pathlib import Path

import pytest

from llmflow.errors import ConfigError, LlmflowError
from llmflow.journal import (
    Journal,
    JournalHeader,
    journal_path,
    latest_journal,
    load_for_resume,
    read_journal,
)
from llmflow.types import CallRecord, Completion, GenerationSettings, Message, Timing, Usage

LINE_BREAKS = "a\u2028b\u2029c\u0085d\re\x1cf"


def record(case_id: str, text: str = "ok") -> CallRecord:
    return CallRecord(
        variant_id="v",
        case_id=case_id,
        repeat=0,
        messages=(Message("user", f"say {text}"),),
        settings=GenerationSettings(temperature=0.5, stop=("\n",)),
        completion=Completion(text, Usage(3, 4)),
        timing=Timing(0.5, 0.1, 1, 2),
        cost=None,
    )


def header(config: Path, sha: str = "s" * 64, run: str = "run1", **extra) -> JournalHeader:
    return JournalHeader(
        parent_run_id=run,
        run_ids={"v": f"{run}-child"},
        experiment_id="1",
        config_sha256=sha,
        config_path=str(config.resolve()),
        tracking_uri="http://user:pw@mlflow.example:5000/?token=abc",
        **extra,
    )


def test_records_with_unicode_line_separators_survive_a_resume(tmp_path: Path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, header(tmp_path / "e.yaml"))
    journal.append(record("a", LINE_BREAKS))
    journal.append(record("b", "plain"))
    journal.close()
    read_header, records = read_journal(path)
    assert read_header is not None and read_header.parent_run_id == "run1"
    assert [(r.case_id, r.completion.text) for r in records] == [("a", LINE_BREAKS), ("b", "plain")]
    assert records[0] == record("a", LINE_BREAKS)


def test_a_line_cut_mid_character_by_a_kill_is_dropped(tmp_path: Path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, header(tmp_path / "e.yaml"))
    journal.append(record("a"))
    journal.close()
    with path.open("ab") as file:
        file.write(json.dumps({"type": "call", "text": "\u4e2d"}, ensure_ascii=False).encode()[:-4])
    assert [r.case_id for r in read_journal(path)[1]] == ["a"]


def test_the_header_is_a_dataclass_with_a_redacted_tracking_uri(tmp_path: Path):
    original = header(tmp_path / "e.yaml")
    assert "pw" not in original.tracking_uri and "abc" not in original.tracking_uri
    line = original.to_json()
    assert "pw" not in line and "abc" not in line
    assert JournalHeader.from_json(line) == original
    with pytest.raises(ConfigError):
        JournalHeader.from_json('{"type": "call"}')


def test_the_old_dict_header_still_reads(tmp_path: Path):
    path = tmp_path / "j.jsonl"
    old = {"parent_run_id": "p", "run_ids": {"v": "c"}, "experiment_id": "1"}
    old |= {"config_sha256": "s", "tracking_uri": "sqlite:///x.db"}
    Journal(path, old).close()
    read_header = read_journal(path)[0]
    assert read_header == JournalHeader("p", {"v": "c"}, "1", "s", None, "sqlite:///x.db")


def write_journal(directory: Path, head: JournalHeader, mtime: float) -> Path:
    path = journal_path(head.parent_run_id, directory)
    Journal(path, head).close()
    os.utime(path, (mtime, mtime))
    return path


def test_resume_picks_the_newest_journal_of_this_experiment_file(tmp_path: Path):
    mine, other = tmp_path / "mine.yaml", tmp_path / "other.yaml"
    write_journal(tmp_path, header(mine, run="old-mine"), 1000)
    write_journal(tmp_path, header(mine, run="new-mine"), 2000)
    write_journal(tmp_path, header(other, sha="o" * 64, run="other"), 3000)
    resumed = load_for_resume(None, tmp_path, mine, "s" * 64)
    assert resumed.header.parent_run_id == "new-mine"
    assert latest_journal(tmp_path, other, "o" * 64).name == "other.jsonl"


def test_resume_says_when_no_journal_belongs_to_this_file(tmp_path: Path):
    write_journal(tmp_path, header(tmp_path / "other.yaml", run="other"), 1000)
    with pytest.raises(ConfigError, match=r"no journal in .* was started from .*mine\.yaml"):
        load_for_resume(None, tmp_path, tmp_path / "mine.yaml", "s" * 64)


def test_resume_refuses_this_file_once_changed(tmp_path: Path):
    write_journal(tmp_path, header(tmp_path / "mine.yaml"), 1000)
    with pytest.raises(ConfigError, match=r"changed since run run1 started"):
        load_for_resume(None, tmp_path, tmp_path / "mine.yaml", "changed")


def test_old_headers_without_a_path_match_by_content(tmp_path: Path):
    old = JournalHeader("old", {"v": "c"}, "1", "s" * 64)
    write_journal(tmp_path, old, 1000)
    write_journal(tmp_path, JournalHeader("newer", {}, "1", "x" * 64), 2000)
    assert load_for_resume(None, tmp_path, tmp_path / "e.yaml", "s" * 64).header == old


def test_resume_takes_a_unique_prefix_of_the_run_id(tmp_path: Path):
    mine = tmp_path / "mine.yaml"
    for run in ("cc0f0303aa", "cc0f9999bb", "070a158bcc"):
        write_journal(tmp_path, header(mine, run=run), 1000)
    assert load_for_resume("070a", tmp_path, mine, "s" * 64).header.parent_run_id == "070a158bcc"
    assert load_for_resume("CC0F03", tmp_path, mine, "s" * 64).header.parent_run_id == (
        "cc0f0303aa"
    )
    with pytest.raises(LlmflowError, match=r"ambiguous \(2 runs start with 'cc0f' in the jou"):
        load_for_resume("cc0f", tmp_path, mine, "s" * 64)
    with pytest.raises(LlmflowError, match=r"^no run 'beef' in the journals in "):
        load_for_resume("beef", tmp_path, mine, "s" * 64)


def test_resume_reuses_what_llmflow_score_paid_the_judges_since(tmp_path: Path):
    """A run killed while judging, then scored, then resumed: the verdicts `score` paid (its
    ledger beside the journal) are reused, never paid again."""
    from llmflow.judge_journal import JudgeEntry, Ledger, ledger_path

    config = tmp_path / "e.yaml"
    path = journal_path("ab12cd", tmp_path)
    journal = Journal(path, header(config, run="ab12cd"))
    journal.append(record("q1"))
    journal.close()
    paid = JudgeEntry("v", "q1", 0, "correct", "k" * 64, record("q1", '{"score": 1}'))
    ledger = Ledger(ledger_path(path))
    ledger.append(paid)
    ledger.close()
    resumed = load_for_resume("ab12cd", tmp_path, config, "s" * 64)
    assert [entry.id for entry in resumed.judges] == [paid.id]


def test_a_judges_timeout_retries_or_url_credentials_do_not_change_what_it_was_asked():
    from llmflow.judge_journal import question_key
    from llmflow.scoring.specs import ScorerSpec

    def judge(**extra):
        fields = {"type": "judge", "name": "j", "provider": "openai", "model": "gpt-4o-mini"}
        fields |= {"base_url": "http://u:old@127.0.0.1:9/v1", "rubric": "Correct?"}
        return ScorerSpec.model_validate(fields | extra)

    asked = (Message("user", "2+2?"),)
    same = question_key(judge(), asked, "4", "4")
    reached = judge(timeout_s=300, max_retries=5, base_url="http://u:new@127.0.0.1:9/v1")
    assert question_key(reached, asked, "4", "4") == same
    assert question_key(judge(temperature=0.9), asked, "4", "4") != same
    assert question_key(judge(rubric="Polite?"), asked, "4", "4") != same
