"""A pipeline file, parsed and validated into a spec that can build its steps anywhere.

The spec holds only names and plain parameters (what the YAML says, defaults filled in): it is what
travels to Ray workers, what the fingerprint hashes, and what the manifest records. Everything is
checked here, on the driver, so a typo fails in a second with the file, step and field named, instead
of an hour into a cluster job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import tamis
from tamis.dedup.options import DedupOptions, DedupOptionsError, validate_dedup_section
from tamis.pipeline.validation import ParameterError, validate_params
from tamis.pipeline.yaml_strict import load_yaml
from tamis.steps.base import Step
from tamis.steps.registry import UnknownStepError, get_step_class, load_plugin_dir, record_plugin_module

RESERVED_STEP_KEYS = ("step", "name")
#: the entry of `steps:` that says where deduplication sits; the steps after it run in the finalize stage
DEDUP_ENTRY = "dedup"
TOP_LEVEL_KEYS = ("name", "description", "reader", "steps", "writer", "plugins", "removed", "dedup")
DEFAULT_READER = {"step": "warc"}
DEFAULT_WRITER = {"step": "parquet"}


class PipelineError(ValueError):
    """The pipeline file is wrong; the message names the file, the step and the field."""


@dataclass(frozen=True)
class StepSpec:
    step: str
    name: str
    params: dict[str, Any]
    # The class itself travels with the spec, so plugin steps (pickled by value) need no registry on workers.
    step_class: type[Step] | None = field(default=None, compare=False, repr=False)

    def build(self) -> Step:
        return (self.step_class or get_step_class(self.step))(**self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "params": self.params}


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    reader: StepSpec
    steps: tuple[StepSpec, ...]
    writer: StepSpec
    source: str = "<memory>"
    removed: dict[str, Any] = field(default_factory=dict)
    dedup: DedupOptions | None = None
    #: with a `- step: dedup` entry in `steps:`, how many steps come before it (they run in the process
    #: stage; the others run after dedup, in finalize); None with a top-level `dedup:` section or no dedup
    dedup_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "reader": self.reader.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "writer": self.writer.to_dict(),
            "removed": self.removed,
            "dedup": self.dedup.to_dict() if self.dedup else None,
        }
        if self.dedup_at is not None:  # absent otherwise, so existing pipelines keep their fingerprint
            data["dedup_at"] = self.dedup_at
        return data

    def provenance(self) -> dict[str, Any]:
        """Library versions, model-file and plugin-source hashes that decide the output (pipeline.provenance)."""
        from tamis.pipeline.provenance import provenance

        return provenance(self)

    def fingerprint(self, **extra: Any) -> str:
        """Hash of every step's parameters, run options that change output, and the provenance: the versions
        of the libraries that shape text and decisions, the content of model files, the plugins' source."""
        from tamis.engine.layout import INPUT_ID_HEX_DIGITS

        # the input ids name every shard and marker: an output written with other ids is another output
        payload = {"pipeline": self.to_dict(), "tamis": tamis.__version__, "provenance": self.provenance(),
                   "input_id_hex_digits": INPUT_ID_HEX_DIGITS, **extra}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _step_spec(raw: Any, where: str, taken: set[str], expected_kind: str | None) -> StepSpec:
    if isinstance(raw, str):
        raw = {"step": raw}
    if not isinstance(raw, dict):
        raise PipelineError(f"{where}: expected a mapping with a 'step' key, got {raw!r}")
    if "step" not in raw:
        raise PipelineError(f"{where}: missing the 'step' key (the registered step name)")
    step_name = raw["step"]
    if not isinstance(step_name, str):
        raise PipelineError(f"{where}.step: expected a step name, got {step_name!r}")
    try:
        step_class = get_step_class(step_name)
    except UnknownStepError as exc:
        raise PipelineError(f"{where}.step: {exc}") from None
    if expected_kind is not None and step_class.kind != expected_kind:
        raise PipelineError(f"{where}.step: {step_name!r} is a {step_class.kind}, expected a {expected_kind}")
    if expected_kind is None and step_class.kind in ("reader", "writer"):
        raise PipelineError(f"{where}.step: {step_name!r} is a {step_class.kind}; put it under '{step_class.kind}:'")
    instance_name = raw.get("name", step_name)
    if not isinstance(instance_name, str) or not instance_name.replace("_", "").replace("-", "").isalnum():
        raise PipelineError(f"{where}.name: expected a short identifier, got {instance_name!r}")
    if instance_name in taken:
        raise PipelineError(f"{where}.name: {instance_name!r} is used twice; give one of them another 'name:'")
    taken.add(instance_name)
    params = {k: v for k, v in raw.items() if k not in RESERVED_STEP_KEYS}
    try:
        resolved = validate_params(step_class, params)
    except ParameterError as exc:
        raise PipelineError(f"{where} ({step_name}).{exc.field}: {str(exc)[len(exc.field) + 2 :]}") from None
    try:
        step_class(**resolved)
    except Exception as exc:  # noqa: BLE001 - a constructor that rejects its arguments
        raise PipelineError(f"{where} ({step_name}): {exc}") from None
    return StepSpec(step_name, instance_name, resolved, step_class)


def parse_pipeline(data: Any, source: str = "<memory>", plugin_dirs: list[str] | None = None,
                   allow_plugins: bool = True) -> PipelineSpec:
    """Validate a pipeline mapping. `allow_plugins=False` (`--no-plugins`) imports no plugin file: a pipeline
    whose `plugins:` names one is refused, naming it."""
    if not isinstance(data, dict):
        raise PipelineError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise PipelineError(f"{source}: unknown top-level key {unknown[0]!r} (accepted: {', '.join(TOP_LEVEL_KEYS)})")
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise PipelineError(f"{source}: plugins: expected a list of directories or module names")
    if not allow_plugins and plugins:
        raise PipelineError(f"{source}: plugins: {plugins[0]!r} is not loaded because plugins are off (--no-plugins)")
    base = Path(source).parent if source != "<memory>" else Path.cwd()
    for plugin in [*(plugin_dirs or []), *plugins]:
        candidate = Path(plugin) if Path(plugin).is_absolute() else base / plugin
        if candidate.is_dir():
            load_plugin_dir(candidate)
        elif Path(plugin).is_dir():
            load_plugin_dir(plugin)
        else:
            try:
                __import__(plugin)
            except ImportError as exc:
                raise PipelineError(f"{source}: plugins: cannot load {plugin!r}: {exc}") from None
            except Exception as exc:  # the module itself raised: its error, not a traceback through ours
                raise PipelineError(f"{source}: plugins: importing {plugin!r} raised {type(exc).__name__}: {exc}"
                                    ) from exc
            record_plugin_module(plugin)
    steps_raw = data.get("steps", [])
    if not isinstance(steps_raw, list):
        raise PipelineError(f"{source}: steps: expected a list of steps")
    taken: set[str] = set()
    reader = _step_spec(data.get("reader", DEFAULT_READER), f"{source}: reader", taken, "reader")
    dedup_entries = [i for i, raw in enumerate(steps_raw) if raw == DEDUP_ENTRY
                     or (isinstance(raw, dict) and raw.get("step") == DEDUP_ENTRY)]
    if len(dedup_entries) > 1:
        raise PipelineError(f"{source}: steps[{dedup_entries[1]}]: dedup appears twice (one dedup per pipeline)")
    if dedup_entries and data.get("dedup") is not None:
        raise PipelineError(f"{source}: steps[{dedup_entries[0]}]: dedup is both a step and a top-level 'dedup:' "
                            "section; keep one")
    dedup_at = None
    dedup_raw = data.get("dedup")
    if dedup_entries:
        dedup_at = dedup_entries[0]
        entry = steps_raw[dedup_at]
        dedup_raw = {k: v for k, v in entry.items() if k != "step"} if isinstance(entry, dict) else {}
        steps_raw = [raw for i, raw in enumerate(steps_raw) if i != dedup_at]
    steps = tuple(_step_spec(raw, f"{source}: steps[{i + (dedup_at is not None and i >= dedup_at)}]", taken, None)
                  for i, raw in enumerate(steps_raw))
    writer = _step_spec(data.get("writer", DEFAULT_WRITER), f"{source}: writer", taken, "writer")
    removed = data.get("removed", {})
    if not isinstance(removed, dict):
        raise PipelineError(f"{source}: removed: expected a mapping")
    try:
        dedup = validate_dedup_section(dedup_raw, source)
    except DedupOptionsError as exc:
        message = str(exc)
        if dedup_at is not None:
            message = message.replace(f"{source}: dedup", f"{source}: steps[{dedup_at}] (dedup)", 1)
        raise PipelineError(message) from None
    if dedup is None:
        dedup_at = None  # `enabled: false`: every step runs in the process stage, in order
    name = data.get("name", Path(source).stem if source != "<memory>" else "pipeline")
    return PipelineSpec(str(name), reader, steps, writer, source, removed, dedup, dedup_at)


def load_pipeline(path: str | Path, plugin_dirs: list[str] | None = None, allow_plugins: bool = True) -> PipelineSpec:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: pipeline file not found")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML: {exc}") from None
    return parse_pipeline(data, str(path), plugin_dirs, allow_plugins)
