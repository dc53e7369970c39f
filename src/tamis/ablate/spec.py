"""An ablation file, parsed and validated: a base pipeline, its variants, the budget, seeds and evaluators.

    name: gopher-quality
    base: fineweb.yaml                 # a pipeline file (relative to this file) or an inline pipeline
    input: ../examples/data/*.warc.gz  # one glob or a list; relative to this file
    token_budget: 50000                # tokens sampled per variant and seed, or `auto` (the smallest output)
    seeds: [0, 1, 2]
    holdout: {fraction: 0.1, max_tokens: 20000}   # validation text, the same for every variant
    variants:
      - name: baseline                 # the base pipeline as is
      - name: gopher_quality
        add: [{step: gopher_quality, after: language_id}]
      - name: strict_lid
        set: {language_id: {threshold: 0.8}}
      - name: no_lid
        remove: [language_id]
    evaluators:
      - evaluator: tiny-lm
        benchmarks_dir: ../../shared/data/benchmarks

Everything is checked before Ray starts; errors name the file, the variant or evaluator, and the field.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tamis.ablate.evaluator import Evaluator, UnknownEvaluatorError, get_evaluator_class
from tamis.pipeline.spec import PipelineError, PipelineSpec, parse_pipeline
from tamis.pipeline.validation import ParameterError, validate_params
from tamis.pipeline.yaml_strict import load_yaml
from tamis.steps.registry import load_plugin_dir

TOP_LEVEL_KEYS = ("name", "description", "base", "input", "variants", "token_budget", "seeds", "holdout",
                  "evaluators", "plugins", "rehydrate", "tokenize")
VARIANT_KEYS = ("name", "description", "add", "remove", "set")
HOLDOUT_KEYS = ("fraction", "max_tokens", "files")
TOKENIZE_KEYS = ("format", "tokenizer", "eos")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class AblationError(ValueError):
    """The ablation file is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Variant:
    name: str
    pipeline: PipelineSpec
    changes: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class EvaluatorSpec:
    evaluator: str
    name: str
    params: dict[str, Any]
    evaluator_class: type[Evaluator] = field(compare=False, repr=False)

    def build(self) -> Evaluator:
        return self.evaluator_class(**self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"evaluator": self.evaluator, "name": self.name, "params": self.params}


@dataclass(frozen=True)
class Holdout:
    """Held-out validation text: a `fraction` of the shared documents (by id hash), at most `max_tokens`,
    excluded from every variant's sample; or the user's own Parquet/text `files`."""

    fraction: float = 0.1
    max_tokens: int = 20_000
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenizeSpec:
    """Each sample (and the holdout) is also written as token files, as `tamis tokenize` writes them."""

    format: str = "numpy"
    tokenizer: str = "gpt2"
    eos: str | None = None


@dataclass(frozen=True)
class AblationSpec:
    name: str
    base: PipelineSpec
    inputs: tuple[str, ...]
    variants: tuple[Variant, ...]
    token_budget: int | None  # None: `auto`, the smallest variant's output
    seeds: tuple[int, ...]
    evaluators: tuple[EvaluatorSpec, ...]
    holdout: Holdout = Holdout()
    source: str = "<memory>"
    base_dir: str = "."
    description: str = ""
    #: sample from FineWeb-2's rehydrated output (documents repeated by their minhash_cluster_size)
    rehydrate: bool = False
    tokenize: TokenizeSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenize": dataclasses.asdict(self.tokenize) if self.tokenize else None,
            "name": self.name,
            "source": self.source,
            "base": self.base.to_dict(),
            "inputs": list(self.inputs),
            "variants": [{"name": v.name, "changes": list(v.changes), "pipeline": v.pipeline.to_dict()}
                         for v in self.variants],
            "token_budget": self.token_budget if self.token_budget is not None else "auto",
            "seeds": list(self.seeds),
            "evaluators": [e.to_dict() for e in self.evaluators],
            "holdout": {"fraction": self.holdout.fraction, "max_tokens": self.holdout.max_tokens,
                        "files": list(self.holdout.files)},
            **({"rehydrate": True} if self.rehydrate else {}),
        }


def _resolve(path: str, base_dir: Path) -> str:
    if "://" in path or Path(path).is_absolute():
        return path
    return str(base_dir / path)


def _step_entries(raw_steps: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw_steps, list):
        raise AblationError(f"{where}: steps: expected a list of steps")
    entries = []
    for i, raw in enumerate(raw_steps):
        if isinstance(raw, str):
            raw = {"step": raw}
        if not isinstance(raw, dict) or "step" not in raw:
            raise AblationError(f"{where}: steps[{i}]: expected a mapping with a 'step' key, got {raw!r}")
        entries.append(dict(raw))
    return entries


def _instance(entry: dict[str, Any]) -> str:
    return str(entry.get("name", entry["step"]))


def _index_of(steps: list[dict[str, Any]], name: Any, where: str) -> int:
    names = [_instance(s) for s in steps]
    if name not in names:
        raise AblationError(f"{where}: no step named {name!r} in the pipeline (steps: {', '.join(names) or 'none'})")
    return names.index(name)


def _apply_changes(base: dict[str, Any], raw: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """The base pipeline mapping with this variant's `remove`, `set` and `add` applied, in that order."""
    pipeline = copy.deepcopy(base)
    steps = _step_entries(pipeline.get("steps", []), where)
    changes: list[str] = []
    removals = raw.get("remove", [])
    if isinstance(removals, str):
        removals = [removals]
    if not isinstance(removals, list):
        raise AblationError(f"{where}.remove: expected a list of step names, got {removals!r}")
    for i, name in enumerate(removals):
        del steps[_index_of(steps, name, f"{where}.remove[{i}]")]
        changes.append(f"-{name}")
    settings = raw.get("set", {})
    if not isinstance(settings, dict):
        raise AblationError(f"{where}.set: expected a mapping of step name to parameters, got {settings!r}")
    for name, params in settings.items():
        index = _index_of(steps, name, f"{where}.set.{name}")
        if not isinstance(params, dict) or {"step", "name"} & set(params):
            raise AblationError(f"{where}.set.{name}: expected a mapping of parameters (not 'step'/'name')")
        steps[index].update(params)
        changes.append(f"{name}: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    additions = raw.get("add", [])
    if not isinstance(additions, list):
        raise AblationError(f"{where}.add: expected a list of steps, got {additions!r}")
    for i, entry in enumerate(additions):
        here = f"{where}.add[{i}]"
        if isinstance(entry, str):
            entry = {"step": entry}
        if not isinstance(entry, dict) or "step" not in entry:
            raise AblationError(f"{here}: expected a mapping with a 'step' key, got {entry!r}")
        entry = dict(entry)
        after, before = entry.pop("after", None), entry.pop("before", None)
        if after is not None and before is not None:
            raise AblationError(f"{here}: give 'after' or 'before', not both")
        if after is not None:
            position = _index_of(steps, after, f"{here}.after") + 1
        elif before is not None:
            position = _index_of(steps, before, f"{here}.before")
        else:
            position = len(steps)
        steps.insert(position, entry)
        changes.append(f"+{_instance(entry)}")
    pipeline["steps"] = steps
    return pipeline, changes


def _parse_variants(raw: Any, base: dict[str, Any], source: str) -> tuple[Variant, ...]:
    if not isinstance(raw, list) or not raw:
        raise AblationError(f"{source}: variants: expected a non-empty list of variants")
    variants: list[Variant] = []
    for i, item in enumerate(raw):
        where = f"{source}: variants[{i}]"
        if not isinstance(item, dict):
            raise AblationError(f"{where}: expected a mapping with a 'name', got {item!r}")
        unknown = [k for k in item if k not in VARIANT_KEYS]
        if unknown:
            raise AblationError(f"{where}: unknown key {unknown[0]!r} (accepted: {', '.join(VARIANT_KEYS)})")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise AblationError(f"{where}.name: expected a short identifier (letters, digits, _ . -), got {name!r}")
        if any(v.name == name for v in variants):
            raise AblationError(f"{where}.name: {name!r} is used twice")
        where = f"{source}: variants[{i}] ({name})"
        pipeline, changes = _apply_changes(base, item, where)
        pipeline.setdefault("name", name)
        try:
            spec = parse_pipeline(pipeline, where)
        except PipelineError as exc:
            raise AblationError(str(exc)) from None
        variants.append(Variant(name, spec, tuple(changes), str(item.get("description", ""))))
    return tuple(variants)


def _parse_evaluators(raw: Any, source: str) -> tuple[EvaluatorSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise AblationError(f"{source}: evaluators: expected a non-empty list (e.g. [{{evaluator: tiny-lm}}])")
    specs: list[EvaluatorSpec] = []
    for i, item in enumerate(raw):
        where = f"{source}: evaluators[{i}]"
        if isinstance(item, str):
            item = {"evaluator": item}
        if not isinstance(item, dict) or "evaluator" not in item:
            raise AblationError(f"{where}: expected a mapping with an 'evaluator' key, got {item!r}")
        try:
            cls = get_evaluator_class(str(item["evaluator"]))
        except UnknownEvaluatorError as exc:
            raise AblationError(f"{where}.evaluator: {exc}") from None
        name = str(item.get("name", item["evaluator"]))
        if not _NAME.match(name) or any(s.name == name for s in specs):
            raise AblationError(f"{where}.name: expected a unique short identifier, got {name!r}")
        params = {k: v for k, v in item.items() if k not in ("evaluator", "name")}
        try:
            resolved = validate_params(cls, params)  # type: ignore[arg-type]
        except ParameterError as exc:
            raise AblationError(f"{where} ({item['evaluator']}).{exc.field}: {str(exc)[len(exc.field) + 2:]}") from None
        try:
            cls(**resolved).check()
        except Exception as exc:  # noqa: BLE001 - a constructor or environment check that refuses
            raise AblationError(f"{where} ({item['evaluator']}): {exc}") from None
        specs.append(EvaluatorSpec(str(item["evaluator"]), name, resolved, cls))
    return tuple(specs)


def _parse_holdout(raw: Any, source: str, base_dir: Path) -> Holdout:
    if raw is None:
        return Holdout()
    if not isinstance(raw, dict):
        raise AblationError(f"{source}: holdout: expected a mapping ({', '.join(HOLDOUT_KEYS)})")
    unknown = [k for k in raw if k not in HOLDOUT_KEYS]
    if unknown:
        raise AblationError(f"{source}: holdout.{unknown[0]}: unknown key (accepted: {', '.join(HOLDOUT_KEYS)})")
    fraction = raw.get("fraction", Holdout.fraction)
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 <= fraction < 1:
        raise AblationError(f"{source}: holdout.fraction: expected a number in [0, 1), got {fraction!r}")
    max_tokens = raw.get("max_tokens", Holdout.max_tokens)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise AblationError(f"{source}: holdout.max_tokens: expected a non-negative integer, got {max_tokens!r}")
    files = raw.get("files", [])
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise AblationError(f"{source}: holdout.files: expected a path or a list of paths")
    return Holdout(float(fraction), max_tokens, tuple(_resolve(f, base_dir) for f in files))


def _parse_tokenize(raw: Any, source: str) -> TokenizeSpec | None:
    from tamis.tokenize.formats import FORMATS
    from tamis.tokenize.tokenizers import TokenizerError, load_tokenizer

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise AblationError(f"{source}: tokenize: expected a mapping ({', '.join(TOKENIZE_KEYS)})")
    unknown = [k for k in raw if k not in TOKENIZE_KEYS]
    if unknown:
        raise AblationError(f"{source}: tokenize.{unknown[0]}: unknown key (accepted: {', '.join(TOKENIZE_KEYS)})")
    spec = TokenizeSpec(str(raw.get("format", "numpy")), str(raw.get("tokenizer", "gpt2")), raw.get("eos"))
    if spec.format not in FORMATS:
        raise AblationError(f"{source}: tokenize.format: expected one of {', '.join(FORMATS)}, got {spec.format!r}")
    try:
        load_tokenizer(spec.tokenizer, spec.eos)
    except TokenizerError as exc:
        raise AblationError(f"{source}: tokenize.tokenizer: {exc}") from None
    return spec


def parse_ablation(data: Any, source: str = "<memory>", base_dir: str | Path | None = None,
                   allow_plugins: bool = True) -> AblationSpec:
    """Validate an ablation mapping; relative paths in it are relative to `base_dir` (the file's folder).
    `allow_plugins=False` (`--no-plugins`) refuses a `plugins:` key here or in the base pipeline."""
    base_dir = Path(base_dir) if base_dir is not None else (
        Path(source).parent if source != "<memory>" else Path.cwd())
    if not isinstance(data, dict):
        raise AblationError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise AblationError(f"{source}: unknown top-level key {unknown[0]!r} (accepted: {', '.join(TOP_LEVEL_KEYS)})")
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise AblationError(f"{source}: plugins: expected a list of directories")
    if plugins and not allow_plugins:
        raise AblationError(f"{source}: plugins: {plugins[0]!r} is not loaded because plugins are off (--no-plugins)")
    for plugin in plugins:
        directory = Path(_resolve(plugin, base_dir))
        if not directory.is_dir():
            raise AblationError(f"{source}: plugins: {plugin!r} is not a directory")
        load_plugin_dir(directory)

    raw_base = data.get("base")
    if isinstance(raw_base, str):
        base_path = Path(_resolve(raw_base, base_dir))
        if not base_path.is_file():
            raise AblationError(f"{source}: base: pipeline file {raw_base!r} not found (looked at {base_path})")
        try:
            base_map = load_yaml(base_path.read_text())
        except yaml.YAMLError as exc:
            raise AblationError(f"{source}: base: {base_path} is not valid YAML: {exc}") from None
        base_source, base_root = str(base_path), base_path.parent
    elif isinstance(raw_base, dict):
        base_map, base_source, base_root = raw_base, f"{source}: base", base_dir
    else:
        raise AblationError(f"{source}: base: expected a pipeline file path or an inline pipeline mapping")
    if not isinstance(base_map, dict):
        raise AblationError(f"{source}: base: expected a pipeline mapping")
    base_map = dict(base_map)
    # the variants' pipelines are parsed under another name, so their plugin paths must not be relative
    base_map["plugins"] = [_resolve(p, base_root) for p in base_map.get("plugins", []) or []]
    try:
        base = parse_pipeline(base_map, base_source, allow_plugins=allow_plugins)
    except PipelineError as exc:
        raise AblationError(str(exc)) from None

    raw_input = data.get("input")
    if isinstance(raw_input, str):
        raw_input = [raw_input]
    if raw_input is not None and (not isinstance(raw_input, list) or not all(isinstance(p, str) for p in raw_input)):
        raise AblationError(f"{source}: input: expected a path/glob or a list of them")
    inputs = tuple(_resolve(p, base_dir) for p in raw_input or [])

    budget = data.get("token_budget", "auto")
    if budget == "auto":
        budget = None
    elif not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise AblationError(f"{source}: token_budget: expected a positive integer or 'auto', got {budget!r}")

    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise AblationError(f"{source}: seeds: expected a non-empty list of distinct integers, got {seeds!r}")

    variants = _parse_variants(data.get("variants"), base_map, source)
    evaluators = _parse_evaluators(data.get("evaluators"), source)
    holdout = _parse_holdout(data.get("holdout"), source, base_dir)
    rehydrate = data.get("rehydrate", False)
    if not isinstance(rehydrate, bool):
        raise AblationError(f"{source}: rehydrate: expected true or false, got {rehydrate!r}")
    name = data.get("name", Path(source).stem if source != "<memory>" else "ablation")
    tokenize = _parse_tokenize(data.get("tokenize"), source)
    return AblationSpec(str(name), base, inputs, variants, budget, tuple(seeds), evaluators, holdout, source,
                        str(base_dir), str(data.get("description", "")), rehydrate, tokenize)


def load_ablation(path: str | Path, allow_plugins: bool = True) -> AblationSpec:
    path = Path(path)
    if not path.is_file():
        raise AblationError(f"{path}: ablation file not found")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise AblationError(f"{path}: not valid YAML: {exc}") from None
    return parse_ablation(data, str(path), path.parent, allow_plugins)


def with_overrides(spec: AblationSpec, *, inputs: list[str] | None = None, seeds: list[int] | None = None,
                   token_budget: int | None = None) -> AblationSpec:
    """The spec with command-line overrides (inputs relative to the current directory)."""
    changes: dict[str, Any] = {}
    if inputs:
        changes["inputs"] = tuple(inputs)
    if seeds:
        changes["seeds"] = tuple(seeds)
    if token_budget is not None:
        changes["token_budget"] = token_budget
    return dataclasses.replace(spec, **changes)
