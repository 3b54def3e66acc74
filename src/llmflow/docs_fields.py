"""What each field of the experiment file means, in the words of docs/experiment-file.md.

docs_gen.py reads the fields, types, defaults and limits from the schema itself; only the
meaning is written here. A field added to the schema without a line here stops
`python -m llmflow.docs_gen` (and its test) with the field's name.
"""

# the heading each model's table has in docs/experiment-file.md
WHERE = {
    "Experiment": "Top level",
    "PromptCase": "prompts",
    "DatasetPrompts": "mlflow_dataset",
    "ScorerSpec": "scorers and assert",
    "ModelEntry": "models",
    "TokenPrice": "price_per_mtok",
    "BatchSettings": "batch",
    "PromotePolicy": "promote",
    "Sweep": "sweep",
}

MEANINGS: dict[str, dict[str, str]] = {
    "Experiment": {
        "experiment": "the MLflow experiment's name (at most 500 characters, MLflow's limit)",
        "task": "logged as the param `task_type`; `classify` turns on [classification]"
        "(classification.md)",
        "prompts": "the prompts, inline, or the path (relative to this file) of a .jsonl, .csv "
        "or .yaml file of rows with the same fields, or `{mlflow_dataset: NAME}` "
        "([MLflow-native](mlflow-native.md)); ids must be unique",
        "repeats": "how many times each prompt is sent to each variant",
        "concurrency": "calls in flight at once, over all models",
        "models": "the model entries; each is a variant (a child run), or one per sweep point",
        "promote": "gates for every promotion of models registered from this file, and which "
        "variant goes to staging after a run ([registry](registry.md))",
        "cache": "the response cache, opt-in: `true` (the user cache folder) or the path of a "
        "sqlite file ([reliability](reliability.md))",
        "max_cost_usd": "the budget of the run, judges included; a plan that could exceed it "
        "is refused before any call",
        "allow_unpriced": "admit models with no known price under `max_cost_usd`",
        "sweep": "one variant per combination of these settings, for every model entry",
        "warmup": "calls per variant made first and left out of the statistics",
        "prompt_sizes": "pad each prompt with neutral text to about N tokens (one variant each)",
        "report": "write report.md/html, plots and results into the parent run",
        "scorers": "checks applied to every prompt's answers ([quality](quality.md))",
        "labels": "task classify: the labels an answer is mapped to",
        "system": "the system message of prompts without one (task classify's default: an "
        "instruction listing the labels); `prompts:/NAME@ALIAS` reads it from the Prompt "
        "Registry ([MLflow-native](mlflow-native.md))",
    },
    "PromptCase": {
        "id": "the prompt's id; a call's trace is named `<variant> &#124; <id>#<repeat>`",
        "user": "the user message",
        "system": "a system message",
        "expected": "the reference answer similarity scorers compare with (the label, for "
        "task classify)",
        "assert": "this prompt's own checks, as `scorers:` entries",
        "metadata": "what else an MLflow dataset's record holds: kept with the run's prompt "
        "set, read by nothing",
    },
    "DatasetPrompts": {
        "mlflow_dataset": "the name of an MLflow evaluation dataset (a SQL store only)",
        "version": "the dataset's version: Databricks only",
        "digest": "refuse the run unless the dataset has this digest (`llmflow dataset push` "
        "prints it)",
    },
    "ScorerSpec": {
        "type": "the check: see the table of types in [quality](quality.md)",
        "name": "the metric's name (`score.<name>`); default: the type, or `<prompt id>.<type>` "
        "in an `assert:`",
        "not": "negate the check's pass",
        "value": "the text, list or pattern the answer is checked against; `{expected}` stands "
        "for the prompt's reference",
        "case_sensitive": "`equals`, `contains-any`, `contains-all`: keep case",
        "schema": "`is-json`: a JSON Schema the answer must validate against",
        "min": "`length`: the fewest characters",
        "max": "`length`: the most characters",
        "threshold": "passes when the score is >= it (similarity, judge; default 0.5), or the "
        "call's latency / cost is <= it",
        "rubric": "`judge`: what a good answer is",
        "provider": "`judge`: the judge's provider (no default)",
        "model": "`judge`: the judge's model (no default); `mlflow`: the `models:` entry that "
        "judges, by its name, model or provider/model (openai or ollama)",
        "base_url": "`judge`: as in a model entry",
        "api_key_env": "`judge`: as in a model entry",
        "temperature": "`judge`: as in a model entry",
        "max_tokens": "`judge`: as in a model entry",
        "timeout_s": "`judge`: as in a model entry",
        "max_retries": "`judge`: as in a model entry",
        "price_per_mtok": "`judge`: as in a model entry",
        "price_as": "`judge`: as in a model entry",
        "batch": "`judge`: as in a model entry (openai, gemini): its questions go through the "
        "provider's batch API at half price once the answers are in ([batch](batch.md))",
        "judge": "`mlflow`: MLflow's built-in judge, one of Correctness, Equivalence, Guidelines, "
        "RelevanceToQuery, Safety, Completeness, Fluency (see [MLflow](mlflow-evaluation.md))",
        "guidelines": "`mlflow`, judge Guidelines: the rule (or rules) the answer must follow",
    },
    "ModelEntry": {
        "provider": "which provider answers (see [Providers](#providers))",
        "model": "the provider's model name; for `local`, a path to a .gguf file or the default",
        "name": "the variant's label (its child run's name); default: the model, disambiguated",
        "temperature": "sampling temperature; omitted = the provider's default (not sent); "
        "anthropic: 0 to 1",
        "max_tokens": "the most output tokens; anthropic sends 4096 when omitted",
        "top_p": "nucleus sampling",
        "seed": "sampling seed (a config error for anthropic, whose API has none)",
        "stop": "stop sequences",
        "stream": "stream the answer (time to first token is measured only when streaming)",
        "base_url": "any server speaking that provider's API; credentials in it are never logged",
        "api_key_env": "the NAME of the environment variable holding the key",
        "register_as": "register this variant under this model name after the run",
        "timeout_s": "limit on one whole call, streaming included",
        "max_retries": "retries of 429 / 5xx / timeouts / connection errors (backoff with "
        "jitter, `Retry-After` honoured)",
        "max_concurrency": "calls in flight at once at this entry's endpoint (provider + base URL "
        "+ key variable), shared by every variant calling it; default: `concurrency`",
        "cost_per_hour_usd": "local cost model: USD per hour of wall time (default 0 for "
        "ollama, local and sklearn)",
        "price_per_mtok": "your own price per million tokens, over genai-prices",
        "price_as": "look the price up as `provider/model` in genai-prices (proxies, gateways)",
        "prompt_template": "local only: the prompt around `{system}` and `{prompt}` "
        "([local model](local-model.md))",
        "n_threads": "local only: llama.cpp threads (default 1)",
        "n_ctx": "local only: context window (default 2048)",
        "batch": "openai and gemini only: `true` or the settings below: the calls go through "
        "the provider's batch API at half price, without latency ([batch](batch.md))",
        "train": "sklearn only: the training file (user, expected), relative to the experiment "
        "file",
    },
    "TokenPrice": {
        "input": "USD per million input tokens",
        "output": "USD per million output tokens",
    },
    "BatchSettings": {
        "max_requests": "requests a job at most (default: the provider's limit)",
        "poll_s": "seconds between two looks at a job",
    },
    "PromotePolicy": {
        "require": "gates such as `error_rate==0` or `latency_p95_s<3`, checked at every promotion",
        "best_by": "after a run, the registered variant best by this metric goes to staging",
    },
    "Sweep": {
        "temperature": "temperatures to sweep (no value twice)",
        "max_tokens": "max_tokens values to sweep",
        "top_p": "top_p values to sweep",
        "seed": "seeds to sweep",
    },
}
