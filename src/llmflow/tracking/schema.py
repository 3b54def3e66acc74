"""llmflow's MLflow vocabulary: every tag, param name and artifact path llmflow writes on a
run, a trace or a registered version, named here and nowhere else. Writers and readers
import these names; a test (tests/tracking/test_schema.py) keeps "llmflow.*" literals out of
every other module. Changing a value here changes what old runs are read as: don't, add a name.
"""

from __future__ import annotations

# --- run tags ----------------------------------------------------------------------------------
TAG_KIND = "llmflow.kind"  # which of llmflow's runs this is: KIND_PARENT or KIND_VARIANT
KIND_PARENT = "experiment-run"  # one per `llmflow run`
KIND_VARIANT = "variant"  # one per variant, a child of the parent
TAG_VARIANT = "llmflow.variant_id"
TAG_CONFIG_SHA = "llmflow.config_sha256"
TAG_VERSION = "llmflow.version"  # llmflow's version that made the run
TAG_CONFIG_FILE = "llmflow.config_file"  # the experiment file's name (its copy: config/<name>)
TAG_TASK = "llmflow.task"
TAG_PROVIDER = "llmflow.provider"  # also on a registered model and its versions
TAG_MODEL = "llmflow.model"  # also on registered versions
TAG_SWEPT = "llmflow.swept"  # JSON of the swept settings' values of this variant
TAG_SKIPPED = "llmflow.skipped"  # why a variant made no call
# how the variant's calls are priced: COST_PRICED (a price table) or COST_LOCAL (the local cost
# model); a variant without `estimated_cost_usd` is unpriced whatever this says. Runs written
# before this tag are read from PARAM_COST_MODEL's text (rows.py cost_kind).
TAG_COST_KIND = "llmflow.cost_kind"
TAG_MODEL_URI = "llmflow.model_uri"  # where the variant run's trained (sklearn) model is logged
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: how a variant names its parent

# --- params read back (the others are every setting sent: tracking/runs.py variant_params) -----
PARAM_MODEL = "model"
PARAM_PROVIDER = "provider"
PARAM_TEMPERATURE = "temperature"
PARAM_TASK_TYPE = "task_type"
PARAM_VARIANT = "variant_id"
PARAM_COST_MODEL = "cost_model"  # the pricer's description; "local..." for the local cost model

# metrics: every key is declared in metrics.py (BY_KEY, and SCORE_PREFIX for score.<check>)

# --- artifacts ---------------------------------------------------------------------------------
CALLS_TABLE = "calls.json"  # variant run: one row per call, mlflow.log_table's layout
RESPONSES = "responses.md"  # variant run: the prompts and answers, readable
CLASSIFICATION = "classification.json"  # variant run: per-label table and confusion matrix
PER_LABEL_TABLE = "per_label.json"  # variant run: the per-label rows as an MLflow table
VARIANT_ENTRY = "llmflow/variant.json"  # variant run: the model entry, to rebuild it for serving
PROMPTS_ARTIFACT = "inputs/prompts.jsonl"  # parent run: the prompt set the run read
TRAINING_ARTIFACT = "inputs/training.json"  # parent run: the training files' digests
CONFIG_DIR = "config"  # parent run: config/<experiment file>, as read (secrets redacted)
COMPARISON_MD = "comparison/comparison.md"
COMPARISON_JSON = "comparison/comparison.json"
COMPARISON_CSV = "comparison/comparison.csv"
REPORT_DIR = "report"  # parent run: the report's files, when the run made one

# --- traces (tags and span attributes) ---------------------------------------------------------
CALL_TAG = "llmflow.call"  # the tag that named the call in traces written before: still read
UNPRICED_USAGE = "llmflow.token_usage"  # an unpriced call's token counts
ROLE_TAG = "llmflow.role"  # "judge" on a judge call's trace: not a model call of the run
SPAN_CASE = "llmflow.case_id"
SPAN_REPEAT = "llmflow.repeat"
SPAN_CACHED = "llmflow.cached"
SPAN_ATTEMPTS = "llmflow.attempts"
SPAN_USAGE_DETAILS = "llmflow.usage_details"
SPAN_ERROR = "llmflow.error"
SPAN_LATENCY = "llmflow.latency_s"
SPAN_TTFT = "llmflow.ttft_s"
JUDGE_KEY = "llmflow.judge"  # an assessment's metadata: the judge's call
JUDGED_CALL_TAG = "llmflow.judged_call"  # the graded call's "<case id>#<repeat>"
JUDGED_TRACE_TAG = "llmflow.judged_trace"  # the graded call's trace id
SCORER_TAG = "llmflow.scorer"  # the judge check's name
JUDGED_RUN_TAG = "llmflow.judged_run"  # a judge's trace: the graded variant's run

# --- registered versions -----------------------------------------------------------------------
SOURCE_RUN_TAG = "llmflow.source_run_id"
PARENT_RUN_ID_TAG = "llmflow.parent_run_id"
GATES_TAG = "llmflow.gates"  # JSON list of the gates the experiment file asks of promotions
PROMOTION_PREFIX = "llmflow.promotion."  # llmflow.promotion.<epoch ms>: one promotion
FINGERPRINT_TAG = "llmflow.config_fingerprint"
RESCORED_PREFIX = "llmflow.rescored."  # llmflow.rescored.<epoch ms>: metrics scored again
PROMPT_TAG = "llmflow.prompt"  # the version's prompt in the Prompt Registry: prompts:/<name>/<n>
PROMPT_ERROR_TAG = "llmflow.prompt_error"  # why the version's prompt was not registered

# --- the Prompt Registry and evaluation datasets -------------------------------------------------
MODEL_VERSION_TAG = "llmflow.model_version"  # on a prompt version: "<model name>/<version>"
# parent run: what was read from MLflow, + "prompts" (a dataset's id), "system" (a prompt URI)
MLFLOW_SOURCE_PREFIX = "llmflow.mlflow_source."
RECORD_ID_TAG = "llmflow.id"  # a dataset record: the prompt's id, kept by `llmflow dataset push`
RECORD_POSITION_TAG = "llmflow.position"  # a dataset record: its place in the file pushed
RECORD_METADATA_TAG = "llmflow.metadata"  # a dataset record: a pushed prompt's metadata (JSON)
