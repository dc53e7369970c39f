"""`tamis stats`: a run's totals, funnel, drop reasons, languages and shards as rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tamis.display import line, plain
from tamis.stats.load import LoadedRun, drop_reasons, funnel


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def percent(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def status_line(run: LoadedRun) -> Text:
    style = "bold yellow" if run.partial else "bold green"
    return plain(run.label, style)


def print_report(console: Console, run: LoadedRun, *, shards: bool = False, top: int = 15) -> None:
    pipeline = (run.manifest.get("pipeline") or {}).get("name", "?")
    console.print(line(("tamis stats ", "bold"), run.url, f"   pipeline {pipeline}",
                       f"   fingerprint {run.manifest.get('fingerprint', '?')}"))
    console.print(status_line(run))
    if run.ignored_markers:
        console.print(f"ignored {run.ignored_markers} commit marker(s) of another pipeline or of inputs not in "
                      "the manifest")
    for path, error in run.failed.items():
        console.print(line(("FAILED", "red"), f" {path}: {error}"))

    totals = run.totals()
    read = totals["docs_read"]
    table = Table(title="totals", title_justify="left", header_style="bold")
    for column in ("inputs", "records", "HTML docs", "kept docs", "kept %", "tokens", "text", "on disk", "shards"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{totals['committed']}/{totals['inputs']}",
        f"{totals['records']:,}",
        f"{read:,}",
        f"{totals['kept']:,}",
        percent(totals["kept"] / read if read else None),
        f"{totals['tokens']:,}",
        human_bytes(totals["text_bytes"]),
        human_bytes(totals["file_bytes"]),
        f"{totals['shards']:,}",
    )
    console.print(table)

    steps = Table(title="funnel (documents kept after each step)", title_justify="left", header_style="bold")
    for column in ("step", "in", "out", "dropped", "% of read", "% of in", "text chars out", "tokens out", "seconds"):
        steps.add_column(column, justify="left" if column == "step" else "right")
    for row in funnel(run):
        steps.add_row(
            plain(row["step"]),
            f"{row['docs_in']:,}",
            f"{row['docs_out']:,}",
            f"{row['dropped']:,}" if row["dropped"] else "",
            percent(row["kept_of_read"]),
            percent(row["kept_of_in"]),
            f"{row['text_chars_out']:,}" if row["text_chars_out"] is not None else "",
            f"{row['tokens_out']:,}" if row["tokens_out"] is not None else "",
            f"{row['seconds']:.1f}",
        )
    console.print(steps)

    reasons = drop_reasons(run)
    if reasons:
        table = Table(title=f"top drop reasons ({min(top, len(reasons))} of {len(reasons)})", title_justify="left",
                      header_style="bold")
        for column in ("step", "reason", "docs", "% of drops", "% of read"):
            table.add_column(column, justify="left" if column in ("step", "reason") else "right")
        for row in reasons[:top]:
            table.add_row(plain(row["step"]), plain(row["reason"]), f"{row['docs']:,}", percent(row["share"]),
                          percent(row["docs"] / read if read else None))
        console.print(table)

    languages = run.stats.languages
    if languages:
        kept = sum(languages.values())
        table = Table(title="languages of kept documents", title_justify="left", header_style="bold")
        for column in ("language", "docs", "%"):
            table.add_column(column, justify="left" if column == "language" else "right")
        for language, n in languages.most_common(top):
            table.add_row(plain(language), f"{n:,}", percent(n / kept))
        console.print(table)

    if run.stats.by_language:
        table = Table(title="per language (after language ID)", title_justify="left", header_style="bold")
        for column in ("language", "in", "kept", "kept %", "tokens", "top drop reasons"):
            table.add_column(column, justify="left" if column in ("language", "top drop reasons") else "right")
        for row in run.stats.by_language.rows(run.steps_order)[:top]:
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in list(row["dropped"].items())[:3])
            table.add_row(row["language"], f"{row['docs_in']:,}", f"{row['kept']:,}",
                          percent(row["kept"] / row["docs_in"] if row["docs_in"] else None), f"{row['tokens']:,}",
                          reasons)
        console.print(table)

    if shards:
        table = Table(title=f"shards ({len(run.stats.shards)})", title_justify="left", header_style="bold")
        for column in ("shard", "rows", "tokens", "text", "on disk"):
            table.add_column(column, justify="left" if column == "shard" else "right")
        for shard in sorted(run.stats.shards, key=lambda s: s["path"]):
            table.add_row(plain(shard_name(shard["path"])), f"{shard['rows']:,}", f"{shard['tokens']:,}",
                          human_bytes(shard["text_bytes"]), human_bytes(shard["file_bytes"]))
        console.print(table)
    elif run.stats.shards:
        console.print(f"{len(run.stats.shards)} shard(s); --shards lists them")
    console.print(status_line(run))


def shard_name(path: str) -> str:
    """`data/<dump>/part-<id>.parquet`, whatever the root was."""
    return "/".join(path.replace("\\", "/").split("/")[-3:])
