"""Is a difference between two variants more than seed noise? Student-t intervals over seeds.

Each variant's metric gets its mean over seeds and a 95% confidence interval, mean ± t(0.975, n-1) s/√n.
Two variants are compared by the difference of their means with its own 95% interval. The seeds are
paired (seed k gives both variants the same model initialisation and data order, and samples ranked by
the same hash), so when both have the same seeds the interval is that of the per-seed differences (a
paired t interval, which removes the noise the two share); otherwise Welch's interval. A difference whose
interval excludes zero is reported as such; at 3 seeds the t factor is 4.30, so it takes a clear effect.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

# t(0.975, df) for df = 1..30 (standard tables, e.g. NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
         2.042)


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom: the table to 30 (a fractional Welch df
    below 30 is rounded down, which widens the interval slightly: conservative), then the Cornish-Fisher
    series in 1/df."""
    if df < 1:
        return math.inf
    if df < 31:
        return _T975[int(df) - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def interval(values: list[float]) -> float:
    """Half-width of the 95% interval of the mean (0 for a single value: no estimate, shown as such)."""
    if len(values) < 2:
        return math.nan
    return t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def difference(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """mean(b) - mean(a) with its 95% interval; `a`, `b` map seed -> value."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) == len(a) == len(b) and len(seeds) >= 2:
        deltas = [b[s] - a[s] for s in seeds]
        mean, half, method = statistics.fmean(deltas), interval(deltas), "paired"
    else:
        va, vb = list(a.values()), list(b.values())
        mean = statistics.fmean(vb) - statistics.fmean(va)
        if len(va) < 2 or len(vb) < 2:
            half, method = math.nan, "welch"
        else:
            sa, sb = statistics.variance(va) / len(va), statistics.variance(vb) / len(vb)
            se = math.sqrt(sa + sb)
            pooled = len(va) + len(vb) - 2
            df = (sa + sb) ** 2 / ((sa ** 2 / (len(va) - 1)) + (sb ** 2 / (len(vb) - 1))) if se else pooled
            half, method = t975(df) * se, "welch"
    known = not math.isnan(half)
    return {"difference": mean, "ci95": half if known else None, "low": mean - half if known else None,
            "high": mean + half if known else None, "n": len(seeds), "method": method,
            "excludes_zero": known and abs(mean) > half}


def compare(rows: list[dict[str, Any]], variants: list[str]) -> list[dict[str, Any]]:
    """Every other variant against the first, per (evaluator, metric): difference (other - first) and interval."""
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    for row in rows:
        values.setdefault((row["variant"], row["evaluator"], row["metric"]), {})[row["seed"]] = row["value"]
    if not variants:
        return []
    reference = variants[0]
    out = []
    metrics = dict.fromkeys((e, m) for (_, e, m) in values)
    for other in variants[1:]:
        for evaluator, metric in metrics:
            a, b = values.get((reference, evaluator, metric)), values.get((other, evaluator, metric))
            if a and b:
                out.append({"variant": other, "against": reference, "evaluator": evaluator, "metric": metric,
                            **difference(a, b)})
    return out
