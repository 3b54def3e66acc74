import hashlib
import json

from llmflow.config import PromptCase
from llmflow.config.prompts_file import load_prompts_file
from llmflow.prompt_set import DIGEST_CHARS, write_prompt_set

ROWS = [
    {"id": "a", "user": "Hi", "assert": [{"type": "contains", "value": "x"}]},
    {"id": "b", "user": "Grüß dich", "system": "Be brief.", "expected": "hallo"},
    {"id": "c", "user": "Hello", "metadata": {"mlflow.dataset_record_id": "r-1"}},
]


def test_the_streamed_digest_is_the_digest_of_the_whole_set_at_once(tmp_path):
    prompts = [PromptCase.of(row) for row in ROWS]
    written = write_prompt_set(prompts, tmp_path)
    # the digest runs stored before the set was streamed: the rows without metadata, as one list
    basis = [{k: v for k, v in row.items() if k != "metadata"} for row in ROWS]
    whole = json.dumps(basis, ensure_ascii=False, sort_keys=True)
    assert written.digest == hashlib.sha256(whole.encode()).hexdigest()[:DIGEST_CHARS]
    assert written.rows == 3


def test_the_metadata_does_not_change_the_digest(tmp_path):
    plain = [PromptCase.of({k: v for k, v in r.items() if k != "metadata"}) for r in ROWS]
    first = write_prompt_set(plain, tmp_path)
    (tmp_path / "again").mkdir()
    again = write_prompt_set([PromptCase.of(r) for r in ROWS], tmp_path / "again")
    assert first.digest == again.digest


def test_the_stored_set_reads_back_as_the_prompts_it_was_written_from(tmp_path):
    prompts = tuple(PromptCase.of(row) for row in ROWS)
    written = write_prompt_set(prompts, tmp_path)
    assert load_prompts_file(written.path) == prompts
