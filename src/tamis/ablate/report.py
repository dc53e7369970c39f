"""The ablation's table and chart: `summary.md`, `chart.png` and a self-contained `report.html`.

The table gives each metric's mean over seeds ± the half-width of its 95% t interval (see ablate.stats),
and a second table the difference of every variant from the first, with its interval. The chart has one
panel per metric: a bar per variant at the mean over seeds, the 95% interval as an error bar, and each
seed's value as a dot. It needs matplotlib (`pip install 'tamis[proxy]'`); without it
the report has the table only and says why.
"""

from __future__ import annotations

import base64
import html
import io
import math
import posixpath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tamis.ablate.runner import AblationResult
    from tamis.ablate.spec import AblationSpec

PANELS_PER_ROW = 4


def _metrics(result: AblationResult) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for row in result.summary:
        seen.setdefault((row["evaluator"], row["metric"]), None)
    return list(seen)


def _label(evaluator: str, metric: str, evaluators: set[str]) -> str:
    return metric if len(evaluators) == 1 else f"{evaluator}.{metric}"


def summary_table(spec: AblationSpec, result: AblationResult) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per variant, one column per metric, `mean ± 95% interval` over seeds."""
    metrics = _metrics(result)
    evaluators = {e for e, _ in metrics}
    cells = {(r["variant"], r["evaluator"], r["metric"]): r for r in result.summary}
    header = ["variant", "changes", *(_label(e, m, evaluators) for e, m in metrics)]
    rows = []
    for variant in spec.variants:
        row = [variant.name, " ".join(variant.changes) or "(base)"]
        for evaluator, metric in metrics:
            cell = cells.get((variant.name, evaluator, metric))
            half = cell.get("ci95") if cell is not None else None
            row.append("failed" if cell is None else
                       f"{cell['mean']:.4f} ± {half:.4f}" if half is not None else f"{cell['mean']:.4f}")
        rows.append(row)
    return header, rows


def difference_table(spec: AblationSpec, result: AblationResult) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per (variant, metric) against the first variant: difference, 95% interval, verdict."""
    evaluators = {c["evaluator"] for c in result.comparisons}
    header = ["variant", "against", "metric", "difference", "95% interval", "n", "beyond noise"]
    rows = []
    for c in result.comparisons:
        span = f"[{c['low']:+.4f}, {c['high']:+.4f}]" if c["ci95"] is not None else "n/a (one seed)"
        rows.append([c["variant"], c["against"], _label(c["evaluator"], c["metric"], evaluators),
                     f"{c['difference']:+.4f}", span, f"{c['n']} ({c['method']})",
                     "yes" if c["excludes_zero"] else "no"])
    return header, rows


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def markdown_table(spec: AblationSpec, result: AblationResult) -> str:
    lines = _markdown(*summary_table(spec, result))
    if result.comparisons:
        lines += ["", f"Differences from `{spec.variants[0].name}` (other minus it; 95% t interval over seeds):", ""]
        lines += _markdown(*difference_table(spec, result))
    return "\n".join(lines) + "\n"


def chart_png(spec: AblationSpec, result: AblationResult) -> bytes | None:
    """The chart as PNG bytes; None when there is nothing to plot. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = _metrics(result)
    if not metrics:
        return None
    evaluators = {e for e, _ in metrics}
    names = [v.name for v in spec.variants]
    cols = min(PANELS_PER_ROW, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    cells = {(r["variant"], r["evaluator"], r["metric"]): r for r in result.summary}
    for index, (evaluator, metric) in enumerate(metrics):
        ax = axes[index // cols][index % cols]
        for x, name in enumerate(names):
            cell = cells.get((name, evaluator, metric))
            if cell is None:
                continue
            ax.bar(x, cell["mean"], yerr=cell.get("ci95") or 0.0, color=colours[x % len(colours)], alpha=0.75,
                   capsize=4)
            seeds = [r["value"] for r in result.rows
                     if (r["variant"], r["evaluator"], r["metric"]) == (name, evaluator, metric)]
            ax.scatter([x] * len(seeds), seeds, color="black", s=8, zorder=3)
        values = [r["value"] for r in result.rows if (r["evaluator"], r["metric"]) == (evaluator, metric)]
        if values:
            low, high = min(values), max(values)
            pad = (high - low) * 0.6 or abs(high) * 0.05 or 0.05
            ax.set_ylim(max(0.0, low - pad) if low >= 0 else low - pad, high + pad)
        ax.set_title(_label(evaluator, metric, evaluators), fontsize=9)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for index in range(len(metrics), rows * cols):
        axes[index // cols][index % cols].axis("off")
    budget = f"{result.token_budget:,} tokens" if result.token_budget else "no budget"
    figure.suptitle(f"{spec.name}: mean ± 95% interval over {len(spec.seeds)} seed(s), {budget} per variant",
                    fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _html(spec: AblationSpec, result: AblationResult, png: bytes | None, chart_note: str) -> str:
    header, rows = summary_table(spec, result)
    table = "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    table += "</table>"
    d_header, d_rows = difference_table(spec, result)
    if d_rows:
        table += (f"<h2>Differences from {html.escape(spec.variants[0].name)} (95% t interval over seeds)</h2>"
                  "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in d_header) + "</tr>")
        table += "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in d_rows)
        table += "</table>"
    failures = "".join(
        f"<li>{html.escape(str(f['variant']))} seed {f['seed']} {html.escape(str(f['evaluator'] or f['stage']))}: "
        f"{html.escape(f['error'])}</li>" for f in result.failures)
    stages = "".join(
        f"<li><code>{html.escape(s['stage'])}</code> after {html.escape(s['after'])}: "
        f"{html.escape(', '.join(s['steps']) or '(none)')} &rarr; {s.get('kept', 0)} documents, "
        f"{s.get('tokens', 0)} tokens</li>" for s in result.stages)
    image = (f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png
             else f"<p><em>{html.escape(chart_note)}</em></p>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tamis ablation: {html.escape(spec.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:90%}}img{{max-width:100%}}</style></head>
<body><h1>Ablation: {html.escape(spec.name)}</h1>
<p>{html.escape(spec.description)}</p>
<p>Token budget per variant and seed: {result.token_budget}; seeds: {", ".join(map(str, spec.seeds))};
evaluators: {html.escape(", ".join(e.name for e in spec.evaluators))}; {result.seconds:.0f} s.</p>
{image}
<h2>Results (mean ± 95% interval over seeds)</h2>{table}
<h2>Failures</h2><ul>{failures or "<li>none</li>"}</ul>
<h2>Pipeline stages</h2><ul>{stages}</ul>
</body></html>
"""


def write_report(spec: AblationSpec, result: AblationResult, fs: Any, root: str) -> dict[str, str | None]:
    """Writes summary.md, chart.png (when matplotlib is installed) and report.html under `root`."""
    paths: dict[str, str | None] = {"table": posixpath.join(root, "summary.md"), "chart": None,
                                    "report": posixpath.join(root, "report.html")}
    with fs.open(paths["table"], "w") as handle:
        handle.write(markdown_table(spec, result))
    png, note = None, ""
    try:
        png = chart_png(spec, result)
        note = "no metrics to plot" if png is None else ""
    except ImportError:
        note = "no chart: matplotlib is not installed (pip install 'tamis[proxy]')"
    if png is not None:
        paths["chart"] = posixpath.join(root, "chart.png")
        with fs.open(paths["chart"], "wb") as handle:
            handle.write(png)
    with fs.open(paths["report"], "w") as handle:
        handle.write(_html(spec, result, png, note))
    return paths
