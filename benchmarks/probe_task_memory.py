"""One task in this process: RSS against Arrow's allocated bytes, once a second (issue #14, part 2).

    python benchmarks/probe_task_memory.py CORPUS PIPELINE OUTPUT [--mib 400 | --whole] [--ray]

Runs `tamis.engine.task.process_input` on the first `--mib` MiB of CORPUS (e.g. the 1 GiB file that
benchmarks/bench_big_warc.py caches under .bench/big-warc/) with every removed document written. Growth that
shows in "arrow" is the Parquet writers' pending row groups, which are bounded by their `row_group_bytes`.
Growth in "rss-arrow" is anything else; glibc's own figures split it further (mallinfo2): "heap" is what
malloc has handed out and not got back (Python objects, strings, models), "free" what it holds freed but has
not returned to the system (fragmentation), so rss-arrow-heap-free is code, mapped models and the rest.
With `--ray`, the task runs as it does in a Ray worker: with a progress actor and Ray metrics, in a process
connected to an embedded Ray.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import threading
import time

import pyarrow as pa

from tamis.engine.plan import WorkUnit
from tamis.engine.task import TaskOptions, process_input
from tamis.pipeline.spec import load_pipeline


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_mib() -> tuple[float, float]:
    """(bytes malloc has handed out, bytes it holds freed), in MiB; (0, 0) without glibc's mallinfo2."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return 0.0, 0.0
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("pipeline")
    parser.add_argument("output")
    parser.add_argument("--mib", type=int, default=400)
    parser.add_argument("--whole", action="store_true", help="the whole file, as one unsplit task")
    parser.add_argument("--ray", action="store_true", help="connect to an embedded Ray; progress actor and metrics")
    args = parser.parse_args()
    spec = load_pipeline(args.pipeline)
    removed = {"mode": "full", "rate": 0.1}
    end = os.path.getsize(args.corpus) if args.whole else args.mib * 2**20
    options = TaskOptions(output=args.output, fingerprint=spec.fingerprint(limit=None, removed=removed, split=end),
                          removed=removed, ray_metrics=args.ray)
    progress = None
    if args.ray:
        from tamis.engine.progress import ProgressCounter
        from tamis.engine.ray_runtime import connect

        connect(None, num_cpus=1)
        progress = ProgressCounter.remote()
    samples: list[tuple[float, float, float, float, float]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - started, rss_mib(), pa.total_allocated_bytes() / 2**20, *heap_mib()))
            stop.wait(1.0)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    summary = process_input(spec, WorkUnit(args.corpus, 0, end, 0), options, progress)
    stop.set()
    thread.join()
    print(f"docs {summary['docs_read']}, kept {summary['docs_kept']}, CPU {summary['cpu_seconds']:.1f} s")
    step = max(1, len(samples) // 15)
    for t, rss, arrow, heap, free in samples[::step] + samples[-1:]:
        print(f"t={t:>6.1f} s  rss={rss:>7.1f}  arrow={arrow:>6.1f}  heap={heap:>7.1f}  free={free:>6.1f}  "
              f"rest={rss - arrow - heap - free:>7.1f} MiB")
    with open(args.output.rstrip("/") + ".samples.json", "w") as handle:
        json.dump(samples, handle)


if __name__ == "__main__":
    main()
