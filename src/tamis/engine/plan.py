"""Units of work: whole input files, or byte ranges of large ones, each committed on its own."""

from __future__ import annotations

from dataclasses import dataclass

from tamis.engine import layout
from tamis.io.redact import public_url


@dataclass(frozen=True)
class WorkUnit:
    """An input file, or the records starting in [start, end) of it when the file is split.

    `path` is what the worker opens, credentials included; it is never written down or printed: ids and
    labels use `public_path` (see tamis.io.redact).
    """

    path: str
    start: int = 0
    end: int | None = None
    part: int | None = None

    @property
    def unit_id(self) -> str:
        base = layout.input_id(self.path)
        return base if self.part is None else f"{base}-r{self.part:04d}"

    @property
    def byte_range(self) -> tuple[int, int] | None:
        return None if self.part is None else (self.start, self.end if self.end is not None else 2**63)

    @property
    def public_path(self) -> str:
        return public_url(self.path)

    def label(self) -> str:
        path = self.public_path
        return path if self.part is None else f"{path}[{self.start}:{self.end}]"


def plan_units(files: list[str], sizes: dict[str, int], max_task_bytes: int | None,
               block_bytes: int | None = None) -> list[WorkUnit]:
    """One unit per file; a file larger than `max_task_bytes` becomes byte ranges of about that size.

    With `block_bytes` (the reader's state blocks, Reader.state_block_bytes) ranges start and end only on
    multiples of it, each holding as many whole blocks as the limit allows (at least one), spread evenly:
    steps that carry state reset at those edges, so the ranges' outputs are exactly the whole file's.
    Without it, ranges are equal and no larger than the limit. Ranges depend only on the file size and these
    two numbers, so the plan (and the output) is the same whatever the cluster looks like.
    """
    units = []
    for path in files:
        size = sizes.get(path)
        if max_task_bytes is None or size is None or size <= max_task_bytes:
            units.append(WorkUnit(path))
            continue
        if block_bytes:
            blocks = -(-size // block_bytes)
            per_range = max(1, max_task_bytes // block_bytes)
            parts = -(-blocks // per_range)
            if parts == 1:
                units.append(WorkUnit(path))
                continue
            edges = [block_bytes * (blocks * k // parts) for k in range(parts)] + [size]
        else:
            parts = -(-size // max_task_bytes)
            edges = [size * k // parts for k in range(parts + 1)]
        units += [WorkUnit(path, edges[k], edges[k + 1], k) for k in range(parts)]
    return units
