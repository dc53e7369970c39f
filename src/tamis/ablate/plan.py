"""Which pipeline runs an ablation needs: the variants' shared step prefixes run once.

Each variant is a chain `reader, step 1, step 2, ...`. The chains form a tree; a node of the tree is run
(materialised as Parquet shards) when it is a variant's end or when two or more variants branch after it,
and the steps below it then read its shards with the `parquet_input` reader instead of redoing its work.
A branch point is only materialised once an extractor has run (before that there is only HTML, which the
Parquet shards do not hold); variants that differ in the reader or extractor each run from the raw input.

With the FineWeb recipe and a variant that adds `gopher_quality` after `language_id`, extraction and
language ID run once, then `token_count` (baseline) and `gopher_quality, token_count` (variant) run on
their output.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass, field

from tamis.ablate.spec import Variant
from tamis.pipeline.spec import PipelineSpec, StepSpec
from tamis.readers.parquet_input import ParquetInputReader

Chain = tuple[StepSpec, ...]
STAGES_DIR = "stages"


@dataclass
class Stage:
    key: str
    spec: PipelineSpec
    parent: Stage | None
    chain: Chain
    variants: list[str] = field(default_factory=list)  # variants whose output this stage is

    def output(self, root: str) -> str:
        return posixpath.join(root, STAGES_DIR, self.key)

    def describe(self) -> dict:
        return {
            "stage": self.key,
            "after": self.parent.key if self.parent else "input",
            "steps": [s.name for s in self.spec.steps],
            "variants": self.variants,
        }


def _chain(variant: Variant) -> Chain:
    return (variant.pipeline.reader, *variant.pipeline.steps)


def _common_end(chains: list[Chain], start: int) -> int:
    end = start
    while all(len(c) > end for c in chains) and all(c[end] == chains[0][end] for c in chains):
        end += 1
    return end


def _has_extractor(chain: Chain) -> bool:
    return any(s.step_class is not None and s.step_class.kind == "extractor" for s in chain)


def _parquet_reader() -> StepSpec:
    reader = ParquetInputReader()
    return StepSpec("parquet_input", "parquet_input", reader.get_params(), ParquetInputReader)


def _stage(name: str, chain: Chain, start: int, end: int, parent: Stage | None, template: PipelineSpec,
           inputs: tuple[str, ...], finished: list[str]) -> Stage:
    reader = chain[0] if parent is None else _parquet_reader()
    steps = chain[1:end] if parent is None else chain[start:end]
    label = "+".join(finished) if finished else "shared"
    spec = PipelineSpec(f"{name}/{label}", reader, tuple(steps), template.writer, template.source, template.removed)
    identity = {"parent": parent.key if parent else list(inputs), "fingerprint": spec.fingerprint()}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return Stage(f"{label}-{digest}", spec, parent, chain[:end], list(finished))


def plan_stages(name: str, variants: tuple[Variant, ...], inputs: tuple[str, ...]) -> list[Stage]:
    """The pipelines to run, parents before children."""
    chains = {v.name: _chain(v) for v in variants}
    pipelines = {v.name: v.pipeline for v in variants}
    stages: list[Stage] = []

    def build(names: list[str], start: int, parent: Stage | None) -> None:
        group = [chains[n] for n in names]
        end = _common_end(group, start)
        finished = [n for n in names if len(chains[n]) == end]
        rest = [n for n in names if len(chains[n]) > end]
        shared = len(names) > 1 and end > start and _has_extractor(group[0][:end])
        if finished or shared:
            template = pipelines[finished[0] if finished else names[0]]
            node = _stage(name, group[0], start, end, parent, template, inputs, finished)
            stages.append(node)
            parent, start = node, end
        branches: dict[int, list[str]] = {}
        for n in rest:
            key = next(i for i, other in enumerate(rest) if chains[other][end] == chains[n][end])
            branches.setdefault(key, []).append(n)
        for members in branches.values():
            build(members, start, parent)

    build(list(chains), 0, None)
    return stages


def variant_stages(stages: list[Stage]) -> dict[str, Stage]:
    return {variant: stage for stage in stages for variant in stage.variants}


def common_ancestor(stages: list[Stage]) -> Stage | None:
    """The deepest stage every variant's output descends from (its documents are what all variants saw)."""
    leaves = list(variant_stages(stages).values())

    def lineage(stage: Stage | None) -> list[Stage]:
        path = []
        while stage is not None:
            path.append(stage)
            stage = stage.parent
        return path[::-1]

    lineages = [lineage(leaf) for leaf in leaves]
    common = None
    for nodes in zip(*lineages, strict=False):
        if all(node is nodes[0] for node in nodes):
            common = nodes[0]
        else:
            break
    return common
