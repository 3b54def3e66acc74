"""What MLflow's evaluation views need of llmflow's runs beyond the traces themselves.

MLflow 3's UI shows a run's Traces tab as an evaluation table (request, response, one column
per assessment, a "compare to" run selector) and lists runs with their dataset inputs. For that
table to be the variant's own calls:

- a judge's call is traced unlinked from the variant run it graded (assessments.py), tagged
  `llmflow.judged_run` with that run: `judge_traces` finds them, the experiment's Traces tab
  lists them (named `judge:<check> | ...`), the run's table does not;
- each variant run carries its parent's dataset inputs (the prompt set: run_inputs.py), so
  the Dataset column and the run page name the data every variant answered;
- "compare to" pairs the rows of two runs by their request preview, which MLflow's store takes
  from the last user message of the span's inputs: the same prompt gives the same preview in
  every variant (a repeat of it pairs only once; see the docs' evaluation views page).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .schema import JUDGED_RUN_TAG


def judge_traces(client: Any, experiment_id: str, run_id: str) -> list[Any]:
    """The traces of the judge calls that graded the calls of a variant run (with spans)."""
    found: list[Any] = []
    page_token = None
    while True:
        page = client.search_traces(
            locations=[experiment_id],
            filter_string=f"tags.`{JUDGED_RUN_TAG}` = '{run_id}'",
            max_results=500,
            page_token=page_token,
        )
        found.extend(page)
        page_token = page.token
        if not page_token:
            return found


def share_datasets(client: Any, parent_id: str, run_ids: Iterable[str]) -> None:
    """Log the parent run's dataset inputs (the prompt set) on each variant run as well: the
    evaluation views read a run's own inputs, and every variant answered the same prompts."""
    datasets = client.get_run(parent_id).inputs.dataset_inputs
    if not datasets:
        return
    for run_id in run_ids:
        client.log_inputs(run_id, datasets=list(datasets))
