"""Extraction steps: HTML in the `html` column becomes text in the `text` column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from tamis.batch import DocBatch
from tamis.extract.sandbox import ExtractionTimeout, ExtractorCrashed
from tamis.extract.speculative import SpeculativeExtraction
from tamis.steps.base import Extractor, OverlappedStep, StepContext, drop_documents
from tamis.steps.registry import register_step

# One sandbox per distinct configuration per worker process, reused by every task that worker runs.
_SANDBOXES: dict[tuple[str, str, float], SpeculativeExtraction] = {}


def assigned_cpus() -> int:
    """CPUs Ray gave the running task (the runner asks for more than one when a job has fewer inputs than
    the cluster has CPUs); 1 outside a Ray task."""
    try:
        import ray

        if not ray.is_initialized():
            return 1
        return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    except Exception:  # noqa: BLE001 - not in a task (a driver, a test): one child
        return 1


def sandbox_cpu_seconds() -> float:
    """CPU seconds of this worker's live extraction children, for per-task CPU accounting."""
    return sum(sandbox.cpu_seconds() for sandbox in _SANDBOXES.values())


class Reasons:
    TIMEOUT = "timeout"
    CRASHED = "extractor_crashed"
    NO_TEXT = "no_text"


@dataclass
class Extracted:
    """What `compute` hands to `apply`: each document's (text, drop reason or None), and the children's CPU."""

    outcomes: list[tuple[str, str | None]]
    child_cpu_seconds: float


class SandboxedExtractor(Extractor, OverlappedStep):
    """Runs an engine in the extraction sandbox; documents that already have text (WET) pass through."""

    engine: ClassVar[str] = ""
    timeout: float

    def engine_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _sandbox(self) -> SpeculativeExtraction:
        params = self.engine_params()
        key = (self.engine, repr(sorted(params.items())), float(self.timeout))
        sandbox = _SANDBOXES.get(key)
        if sandbox is None:
            sandbox = _SANDBOXES[key] = SpeculativeExtraction(self.engine, params, float(self.timeout))
        return sandbox

    def setup(self) -> None:
        self._sandbox().start()  # the child gets ready while the later steps set up

    def start_input(self) -> None:
        """Called at the start of each input and state block: trafilatura's `deduplicate` cache (and any other
        state of the extractor) must not carry documents of another file or block into this one's results.
        Also where the task's CPUs become extraction children (tamis.extract.speculative: same text)."""
        sandbox = self._sandbox()
        cpus = assigned_cpus()
        if sandbox.processes != cpus:
            sandbox.resize(cpus)  # resets every child
            sandbox.start()
        else:
            sandbox.reset()

    def compute(self, batch: DocBatch) -> Extracted:
        """Each document's (text, drop reason or None), from the sandbox; pages without HTML keep their text."""
        htmls = [html for html in batch["html"] if html is not None]
        sandbox = self._sandbox()
        cpu_before = sandbox.total_cpu_seconds()
        extracted = iter(sandbox.extract_many(htmls))
        child_cpu = max(0.0, sandbox.total_cpu_seconds() - cpu_before)
        outcomes: list[tuple[str, str | None]] = []
        for html, text in zip(batch["html"], batch["text"], strict=True):
            if html is None:
                outcomes.append((text, None if text else Reasons.NO_TEXT))
                continue
            result = next(extracted)
            if isinstance(result, ExtractionTimeout):
                outcomes.append((text, Reasons.TIMEOUT))
            elif isinstance(result, ExtractorCrashed):
                outcomes.append((text, Reasons.CRASHED))
            else:
                result = result.strip() if result else ""
                outcomes.append((result, None if result else Reasons.NO_TEXT))
        return Extracted(outcomes, child_cpu)

    def apply(self, batch: DocBatch, result: Extracted, ctx: StepContext) -> DocBatch:
        ctx.counters.child_cpu_seconds += result.child_cpu_seconds
        batch.set_column("text", [text for text, _ in result.outcomes])
        batch.drop_column("html")
        return drop_documents(batch, [reason for _, reason in result.outcomes], ctx)


@register_step("trafilatura")
class TrafilaturaExtractor(SandboxedExtractor):
    """trafilatura main-text extraction with FineWeb's settings (the default extractor)."""

    engine: ClassVar[str] = "tamis.extract.trafilatura_engine:build"

    def __init__(
        self,
        favor_precision: bool = True,
        include_comments: bool = False,
        deduplicate: bool = True,
        timeout: float = 1.0,
        fast_path: bool = True,
    ):
        """
        Args:
            favor_precision: prefer less but cleaner text (FineWeb: True).
            include_comments: keep page comments (FineWeb: False).
            deduplicate: trafilatura's in-page duplicate removal (FineWeb: True).
            timeout: hard limit in seconds per page; a page over it is dropped as `timeout`.
            fast_path: run trafilatura with tamis's equivalent, faster rule objects (same text, byte for
                byte; docs/extraction.md). Only with a verified trafilatura version; otherwise plain
                trafilatura runs, with one warning.
        """
        self.favor_precision = favor_precision
        self.include_comments = include_comments
        self.deduplicate = deduplicate
        self.timeout = timeout
        self.fast_path = bool(fast_path)

    def setup(self) -> None:
        if self.fast_path:
            from tamis.extract.fast_trafilatura import warn_if_unverified

            self.fast_path = not warn_if_unverified()
        super().setup()

    def engine_params(self) -> dict[str, Any]:
        return {
            "favor_precision": self.favor_precision,
            "include_comments": self.include_comments,
            "deduplicate": self.deduplicate,
            "fast_path": self.fast_path,
        }


@register_step("resiliparse")
class ResiliparseExtractor(SandboxedExtractor):
    """resiliparse main-content extraction: about 15x faster than trafilatura, different output.

    Not FineWeb's extractor: text differs (more boilerplate kept, different line breaks), so filter
    decisions differ too. Needs the `fast` extra (`pip install tamis[fast]`).
    """

    engine: ClassVar[str] = "tamis.extract.resiliparse_engine:build"

    def __init__(
        self,
        main_content: bool = True,
        alt_texts: bool = False,
        preserve_formatting: bool = True,
        timeout: float = 1.0,
    ):
        self.main_content = main_content
        self.alt_texts = alt_texts
        self.preserve_formatting = preserve_formatting
        self.timeout = timeout

    def engine_params(self) -> dict[str, Any]:
        return {
            "main_content": self.main_content,
            "alt_texts": self.alt_texts,
            "preserve_formatting": self.preserve_formatting,
        }
