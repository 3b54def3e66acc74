"""The report's figures, as PNG files of a fixed size (800 x 450 px)."""

from __future__ import annotations

from pathlib import Path
from statistics import mean, median

from .data import ReportData, VariantData
from .interpret import sweep_groups

SIZE_IN, DPI = (8, 4.5), 100


def make_plots(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """Write every figure that has data; returns {title: path}."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    measured = [v for v in data.measured if v.latencies]
    plots: dict[str, Path] = {}
    if measured:
        plots["Latency per variant"] = _latency(measured, out_dir / "latency_distribution.png")
        if any(_known_output(v) for v in measured):
            plots["Output tokens per call"] = _tokens(measured, out_dir / "tokens.png")
        costed = [v for v in measured if v.row.cost_per_call_usd is not None]
        if costed:
            plots["Cost versus latency"] = _cost(costed, out_dir / "cost_vs_latency.png")
    for axis in data.swept_axes:
        groups = sweep_groups(measured, axis)
        if groups:
            plots[f"Latency against {axis}"] = _sweep(groups, axis, out_dir / f"sweep_{axis}.png")
    sized = [v for v in measured if len(v.latency_by_prompt_size) > 1]
    if sized:
        plots["Latency against prompt size"] = _prompt_size(sized, out_dir / "prompt_size.png")
    return plots


def _figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=SIZE_IN, dpi=DPI)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the size stays 800 x 450
    plt.close(fig)
    return path


def _latency(variants: list[VariantData], path: Path) -> Path:
    fig, ax = _figure()
    ax.boxplot([v.latencies for v in variants], orientation="horizontal", showmeans=True)
    ax.set_yticks(
        range(1, len(variants) + 1), [f"{v.label} (n={len(v.latencies)})" for v in variants]
    )
    ax.set_xlabel("latency (s): box = quartiles, line = median, triangle = mean")
    ax.set_title("Latency per variant (successful, uncached calls)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _known_output(v: VariantData) -> bool:
    """Every answer has its output count: a mean over some of them would look measured."""
    return v.row.output_tokens is not None and bool(v.output_tokens)


def _tokens(variants: list[VariantData], path: Path) -> Path:
    fig, ax = _figure()
    labels = [v.label for v in variants]
    known = [i for i, v in enumerate(variants) if _known_output(v)]
    ax.bar(known, [mean(variants[i].output_tokens) for i in known], color="#4C72B0")
    for i in set(range(len(variants))) - set(known):  # no bar of height 0 for an unknown
        ax.annotate("not reported", (i, 0), ha="center", va="bottom", fontsize=8, color="#8a4b00")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("output tokens per call (mean)")
    ax.set_title("Output tokens per call")
    return _save(fig, path)


def _cost(variants: list[VariantData], path: Path) -> Path:
    fig, ax = _figure()
    for v in variants:
        x, y = v.row.latency_p50_s, v.row.cost_per_call_usd * 1000
        ax.scatter([x], [y], s=60)
        ax.annotate(v.label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("median latency (s)")
    ax.set_ylabel("USD per 1,000 calls")
    ax.set_title("Cost versus latency (unpriced variants are not shown)")
    return _save(fig, path)


def _sweep(groups: dict, axis: str, path: Path) -> Path:
    fig, ax = _figure()
    for (_, model, others), points in groups.items():
        xs = [x for x, _ in points]
        ys = [v.row.latency_p50_s for _, v in points]
        low = [y - (v.row.latency_p50_ci_low_s or y) for y, (_, v) in zip(ys, points, strict=True)]
        high = [
            (v.row.latency_p50_ci_high_s or y) - y for y, (_, v) in zip(ys, points, strict=True)
        ]
        label = model + (" " + ",".join(f"{k}={val}" for k, val in others) if others else "")
        ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=label)
    ax.set_xlabel(axis)
    ax.set_ylabel("median latency (s), 95% CI")
    ax.set_title(f"Median latency against {axis}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _prompt_size(variants: list[VariantData], path: Path) -> Path:
    fig, ax = _figure()
    for v in variants:
        sizes = sorted(v.latency_by_prompt_size)
        ax.plot(
            sizes, [median(v.latency_by_prompt_size[s]) for s in sizes], marker="o", label=v.label
        )
    ax.set_xlabel("prompt size (tokens, approximate)")
    ax.set_ylabel("median latency (s)")
    ax.set_title("Median latency against prompt size")
    ax.legend(fontsize=8)
    return _save(fig, path)
