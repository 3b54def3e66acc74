"""Batch mode: a model with `batch:` sends its calls through the provider's batch API (OpenAI's
Batch API, Gemini's Batch Mode) at half price, collected minutes or hours later.

- providers/batch_api.py: what a provider's batch wire offers.
- ledger.py: the jobs' lines in the run's journal, written before any job is waited for.
- pricing.py: the batch discount.
- runner.py: splits a variant's calls into jobs, submits, polls, collects them as CallRecords.
"""
