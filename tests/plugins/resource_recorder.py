"""A test plugin step: records what Ray assigned to the task it runs in (CPUs, memory) as JSON, to `path`."""

from __future__ import annotations

import json

import ray

from tamis.batch import DocBatch
from tamis.steps import Filter, register_step


@register_step("assigned_resources")
class AssignedResources(Filter):
    """Keeps every document; writes `ray.get_runtime_context().get_assigned_resources()` to `path`."""

    def __init__(self, path: str):
        self.path = path

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        with open(self.path, "w") as handle:
            json.dump(ray.get_runtime_context().get_assigned_resources(), handle)
        return [None] * len(batch)
