"""Tokens/s of the local model through llmflow's provider versus raw llama_cpp.Llama.

Same process, same loaded model, same prompt, settings and seed; the two are alternated so
that drift (thermal, other load) hits both alike. Prints each run, the medians and the ratio.

    python bench/local_overhead.py [--runs 7] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from llmflow.providers import collect, llama_engine
from llmflow.providers.local import LocalProvider, render_prompt
from llmflow.types import GenerationSettings, Message

PROMPT = (Message("user", "Explain in two sentences what MLflow tracks."),)


def raw_tokens_per_s(llm, prompt: str, max_tokens: int, seed: int) -> tuple[float, int]:
    start = time.perf_counter()
    out = llm.create_completion(
        prompt, max_tokens=max_tokens, temperature=0.7, top_p=0.95, seed=seed, stop=[]
    )
    elapsed = time.perf_counter() - start
    tokens = out["usage"]["completion_tokens"]
    return tokens / elapsed, tokens


def llmflow_tokens_per_s(
    provider: LocalProvider, settings: GenerationSettings
) -> tuple[float, int]:
    completion, timing = asyncio.run(collect(provider.stream(PROMPT, settings), streamed=True))
    return completion.usage.output_tokens / timing.latency_s, completion.usage.output_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    provider = LocalProvider(n_threads=args.threads)
    loaded = llama_engine.load_model("gemma-3-270m", n_ctx=2048, n_threads=args.threads)
    # a template with no stop sequences, so both sides generate up to max_tokens or end-of-text
    provider.prompt_template = "{prompt}"
    prompt = render_prompt(PROMPT, "{prompt}")
    settings = GenerationSettings(temperature=0.7, top_p=0.95, max_tokens=args.max_tokens, seed=42)

    raw_tokens_per_s(loaded.llm, prompt, 8, 1)  # warm up both paths once
    llmflow_tokens_per_s(provider, settings)
    raw, ours = [], []
    print(f"{'run':>4} {'raw tok/s':>10} {'tokens':>7} {'llmflow tok/s':>14} {'tokens':>7}")
    for run in range(args.runs):
        r, rt = raw_tokens_per_s(loaded.llm, prompt, args.max_tokens, 42)
        o, ot = llmflow_tokens_per_s(provider, settings)
        raw.append(r)
        ours.append(o)
        print(f"{run:>4} {r:>10.1f} {rt:>7} {o:>14.1f} {ot:>7}")
    raw_median, our_median = statistics.median(raw), statistics.median(ours)
    print(f"\nmedian raw llama_cpp: {raw_median:.1f} tok/s   llmflow local: {our_median:.1f} tok/s")
    print(f"ratio llmflow/raw: {our_median / raw_median:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
