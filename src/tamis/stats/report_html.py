"""`tamis stats --html`: one self-contained HTML page (inline CSS, JS and SVG; nothing fetched to open it)."""

from __future__ import annotations

import html
import json
from typing import Any

from tamis.io.storage import atomic_open, filesystem
from tamis.stats.histograms import Histogram, describe
from tamis.stats.load import LoadedRun, drop_reasons, feature_histograms, funnel
from tamis.stats.report_terminal import human_bytes, percent, shard_name

KEPT_COLOUR = "#2f6fb0"
REMOVED_COLOUR = "#d0573a"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d8dde3;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}
.sub{color:#5b6670;font-size:13px}.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;
margin:8px 0}.complete{background:#dff3e4;color:#17602c}.partial{background:#fff1cc;color:#7a5600}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #dde2e8;border-radius:8px;
padding:10px 14px;min-width:120px}.card b{display:block;font-size:19px}.card span{color:#5b6670;font-size:12px}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #e6e9ed;
text-align:right}th{background:#eef1f4;cursor:default}th.sort{cursor:pointer}td.l,th.l{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:12px}
.hist{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:8px}.hist .t{font-weight:600;font-size:12px}
.hist .d{color:#5b6670;font-size:11px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
.scroll{max-height:520px;overflow:auto;display:inline-block}svg text{font-family:inherit}
"""
# Sortable shard table, and a marker that the page's script ran (the browser test checks it).
JS = """
(function(){
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th, col){
      th.classList.add('sort');
      th.addEventListener('click', function(){
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
        rows.sort(function(a, b){
          var x = a.cells[col].dataset.v || a.cells[col].textContent;
          var y = b.cells[col].dataset.v || b.cells[col].textContent;
          var nx = parseFloat(x), ny = parseFloat(y);
          var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  document.body.setAttribute('data-ready', String(document.querySelectorAll('svg').length));
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.3g}"


def funnel_svg(rows: list[dict[str, Any]], width: int = 1100) -> str:
    label_w, bar_w, row_h = 170, width - 170 - 230, 24
    top = max((r["docs_in"] for r in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row_h * len(rows) + 30}" '
             f'role="img" aria-label="documents kept after each step">']
    for i, row in enumerate(rows):
        y = 6 + i * row_h
        w_out = bar_w * row["docs_out"] / top
        w_in = bar_w * row["docs_in"] / top
        share = f" ({percent(row['kept_of_read'])} of read)" if row["kept_of_read"] is not None else ""
        dropped = f", -{row['dropped']:,}" if row["dropped"] else ""
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="13">{_e(row["step"])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w_in:.1f}" height="{row_h - 6}" fill="{REMOVED_COLOUR}" '
                     f'opacity="0.35"><title>{_e(row["step"])}: {row["docs_in"]:,} in</title></rect>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w_out:.1f}" height="{row_h - 6}" fill="{KEPT_COLOUR}">'
                     f'<title>{_e(row["step"])}: {row["docs_out"]:,} out</title></rect>')
        parts.append(f'<text x="{label_w + max(w_in, w_out) + 6:.1f}" y="{y + 15}" font-size="12">'
                     f'{row["docs_out"]:,}{_e(share)}{_e(dropped)}</text>')
    legend_y = 6 + len(rows) * row_h + 14
    parts.append(f'<rect x="{label_w}" y="{legend_y - 9}" width="10" height="10" fill="{KEPT_COLOUR}"/>'
                 f'<text x="{label_w + 14}" y="{legend_y}" font-size="11">kept after the step</text>'
                 f'<rect x="{label_w + 140}" y="{legend_y - 9}" width="10" height="10" fill="{REMOVED_COLOUR}" '
                 f'opacity="0.35"/><text x="{label_w + 154}" y="{legend_y}" font-size="11">dropped by the step</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bin_label(edges: tuple[float, ...], i: int) -> str:
    if i == 0:
        return f"< {_num(edges[0])}"
    if i == len(edges):
        return f">= {_num(edges[-1])}"
    return f"[{_num(edges[i - 1])}, {_num(edges[i])})"


def histogram_svg(kept: Histogram | None, removed: Histogram | None, width: int = 250, height: int = 110) -> str:
    """Kept and removed counts per bin, side by side; only the range of bins holding values is drawn."""
    base = kept or removed
    assert base is not None
    edges = tuple(base.edges)
    k = kept.counts if kept else [0] * (len(edges) + 1)
    r = removed.counts if removed else [0] * (len(edges) + 1)
    used = [i for i in range(len(k)) if k[i] or r[i]]
    if not used:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    # one empty bin of margin each side, but never the open-ended bin below the first edge when it is empty
    lo, hi = max(used[0] - 1, 1 if used[0] >= 1 else 0), min(used[-1] + 1, len(k) - 1)
    bins = list(range(lo, hi + 1))
    top = max(max(k[i], r[i]) for i in bins) or 1
    plot_h, left = height - 22, 4
    step = (width - 2 * left) / len(bins)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<line x1="{left}" y1="{plot_h}" x2="{width - left}" y2="{plot_h}" stroke="#9aa4ae"/>']
    for j, i in enumerate(bins):
        x = left + j * step
        for offset, counts, colour, what in ((0, k, KEPT_COLOUR, "kept"), (0.5, r, REMOVED_COLOUR, "removed")):
            if not counts[i]:
                continue
            h = max(1.0, (plot_h - 4) * counts[i] / top)
            bar = max(step / 2 - 0.3, 0.6)
            parts.append(f'<rect x="{x + offset * step:.2f}" y="{plot_h - h:.2f}" width="{bar:.2f}" '
                         f'height="{h:.2f}" fill="{colour}"><title>{_e(_bin_label(edges, i))}: {counts[i]:,} '
                         f'{what}</title></rect>')
    first, last = _bin_label(edges, bins[0]), _bin_label(edges, bins[-1])
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="10" fill="#5b6670">{_e(first)}</text>')
    parts.append(f'<text x="{width - left}" y="{height - 6}" font-size="10" fill="#5b6670" text-anchor="end">'
                 f'{_e(last)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(items: list[tuple[str, int]], colour: str, width: int = 560) -> str:
    row_h = 20
    label_w = min(max(60, 7 * max((len(label) for label, _ in items), default=0) + 12), width // 2)
    top = max((n for _, n in items), default=0) or 1
    total = sum(n for _, n in items) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row_h * len(items) + 6}">']
    for i, (label, n) in enumerate(items):
        y = 3 + i * row_h
        w = (width - label_w - 110) * n / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">{_e(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>'
                     f'<text x="{label_w + w + 5:.1f}" y="{y + 13}" font-size="11">{n:,} '
                     f'({100 * n / total:.1f}%)</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(run: LoadedRun) -> str:
    totals = run.totals()
    rows = funnel(run)
    pipeline = (run.manifest.get("pipeline") or {}).get("name", "?")
    read = totals["docs_read"]
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>tamis stats: {_e(run.url)}</title><style>{CSS}</style></head><body><main>",
           f"<h1>tamis run report</h1><div class=\"sub\">{_e(run.url)} · pipeline {_e(pipeline)} · fingerprint "
           f"{_e(run.manifest.get('fingerprint', '?'))} · stats from {_e(run.source)}</div>",
           f"<div id=\"status\" class=\"badge {'partial' if run.partial else 'complete'}\">{_e(run.label)}</div>"]
    for path, error in run.failed.items():
        out.append(f"<div class=\"sub\">FAILED {_e(path)}: {_e(error)}</div>")
    cards = [
        ("inputs committed", f"{totals['committed']:,} / {totals['inputs']:,}"),
        ("HTML documents read", f"{read:,}"),
        ("documents kept", f"{totals['kept']:,} ({percent(totals['kept'] / read if read else None)})"),
        ("tokens", f"{totals['tokens']:,}"),
        ("text kept", human_bytes(totals["text_bytes"])),
        ("Parquet on disk", human_bytes(totals["file_bytes"])),
        ("shards", f"{totals['shards']:,}"),
        ("WARC records", f"{totals['records']:,}"),
    ]
    out.append("<h2>Totals</h2><div class=\"cards\">" + "".join(
        f"<div class=\"card\"><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in cards) + "</div>")

    out.append("<h2>Funnel: documents kept after each step</h2>" + funnel_svg(rows))
    out.append("<table id=\"funnel\"><thead><tr><th class=\"l\">step</th><th>in</th><th>out</th><th>dropped</th>"
               "<th>% of read</th><th>% of in</th><th>text chars out</th><th>tokens out</th><th>seconds</th>"
               "</tr></thead><tbody>")
    for row in rows:
        out.append(f"<tr><td class=\"l\">{_e(row['step'])}</td><td>{row['docs_in']:,}</td><td>{row['docs_out']:,}</td>"
                   f"<td>{row['dropped']:,}</td><td>{percent(row['kept_of_read'])}</td>"
                   f"<td>{percent(row['kept_of_in'])}</td>"
                   f"<td>{'' if row['text_chars_out'] is None else format(row['text_chars_out'], ',')}</td>"
                   f"<td>{'' if row['tokens_out'] is None else format(row['tokens_out'], ',')}</td>"
                   f"<td>{row['seconds']:.1f}</td></tr>")
    out.append("</tbody></table>")

    reasons = drop_reasons(run)
    if reasons:
        out.append("<h2>Drop reasons</h2>" + _bars_svg([(f"{r['step']}: {r['reason']}", r["docs"])
                                                         for r in reasons[:25]], REMOVED_COLOUR, width=900))

    histograms = feature_histograms(run)
    if histograms:
        out.append("<h2>Distributions: kept vs removed, per step</h2><div class=\"legend sub\">"
                   f"<span style=\"background:{KEPT_COLOUR}\"></span>kept by the step"
                   f"<span style=\"background:{REMOVED_COLOUR}\"></span>removed by the step"
                   " · hover a bar for its bin and count</div>")
        for scope, metrics in histograms.items():
            title = "output (kept documents as written)" if scope == "output" else scope
            out.append(f"<h3>{_e(title)}</h3><div class=\"grid\">")
            for metric, pair in metrics.items():
                kept, removed = pair["kept"], pair["removed"]
                n_kept, n_removed = (kept.n if kept else 0), (removed.n if removed else 0)
                out.append(f"<div class=\"hist\" data-key=\"{_e(scope)}/{_e(metric)}\"><div class=\"t\">{_e(metric)}"
                           f"</div><div class=\"d\">{_e(describe(metric))} · kept {n_kept:,}, removed {n_removed:,}"
                           f"</div>{histogram_svg(kept, removed)}</div>")
            out.append("</div>")

    if run.stats.languages:
        out.append("<h2>Languages of kept documents</h2>" + _bars_svg(run.stats.languages.most_common(30),
                                                                      KEPT_COLOUR))

    if run.stats.by_language:
        out.append(_languages_table(run))

    out.append(f"<h2>Shards ({len(run.stats.shards):,})</h2><div class=\"scroll\"><table id=\"shards\" "
               "class=\"sortable\"><thead><tr><th class=\"l\">shard</th><th>rows</th><th>tokens</th><th>text</th>"
               "<th>on disk</th></tr></thead><tbody>")
    for shard in sorted(run.stats.shards, key=lambda s: s["path"]):
        out.append(f"<tr><td class=\"l\">{_e(shard_name(shard['path']))}</td><td data-v=\"{shard['rows']}\">"
                   f"{shard['rows']:,}</td><td data-v=\"{shard['tokens']}\">{shard['tokens']:,}</td>"
                   f"<td data-v=\"{shard['text_bytes']}\">{human_bytes(shard['text_bytes'])}</td>"
                   f"<td data-v=\"{shard['file_bytes']}\">{human_bytes(shard['file_bytes'])}</td></tr>")
    out.append("</tbody></table></div>")
    out.append("<script type=\"application/json\" id=\"totals\">"
               + json.dumps(totals).replace("</", "<\\/") + "</script>")
    out.append(f"<script>{JS}</script></main></body></html>")
    return "\n".join(out)


def _languages_table(run: LoadedRun) -> str:
    """Per language: documents after language ID, kept, tokens, drop reasons and each step's funnel."""
    rows = ["<h2>Per language</h2><div class=\"scroll\"><table id=\"languages\" class=\"sortable\"><thead><tr>"
            "<th class=\"l\">language</th><th>in</th><th>kept</th><th>tokens</th><th class=\"l\">drop reasons</th>"
            "<th class=\"l\">funnel (step: in → out)</th></tr></thead><tbody>"]
    for row in run.stats.by_language.rows(run.steps_order):
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in row["dropped"].items())
        funnel = " · ".join(f"{step}: {n_in:,} → {n_out:,}" for step, n_in, n_out in row["funnel"])
        rows.append(f"<tr><td class=\"l\">{_e(row['language'])}</td><td data-v=\"{row['docs_in']}\">"
                    f"{row['docs_in']:,}</td><td data-v=\"{row['kept']}\">{row['kept']:,}</td>"
                    f"<td data-v=\"{row['tokens']}\">{row['tokens']:,}</td><td class=\"l\">{_e(reasons)}</td>"
                    f"<td class=\"l\">{_e(funnel)}</td></tr>")
    rows.append("</tbody></table></div>")
    return "".join(rows)


def write_report(run: LoadedRun, path: str) -> None:
    """Write the report to a local path or fsspec URL, its folders made as needed, whole or not at all."""
    fs, target = filesystem(path)
    with atomic_open(fs, target, "wb") as handle:
        handle.write(render(run).encode("utf-8"))
