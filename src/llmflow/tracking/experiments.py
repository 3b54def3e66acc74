"""Finding an MLflow experiment by the name a user typed."""

from __future__ import annotations

from typing import Any

from ..config.validation_errors import did_you_mean
from ..errors import LlmflowError
from ..redact import redact_url

LISTED = 1000  # the names a did-you-mean compares with: enough for any one person's store


def experiment_named(client: Any, name: str) -> Any:
    """The experiment called `name`; else LlmflowError naming the store and the closest name
    there (`compare -e fake-provider` when the experiment is `fake-providers`)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found
    names = [e.name for e in client.search_experiments(max_results=LISTED)]
    raise LlmflowError(
        f"no MLflow experiment named {name!r} in {redact_url(client.tracking_uri)}"
        f"{did_you_mean(name, names, quoted=True)}"
    )
