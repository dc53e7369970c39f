"""What, besides the pipeline file, decides a run's output: libraries, model files, plugin sources.

The fingerprint that guards an output folder hashes all of it (see PipelineSpec.fingerprint), so a rerun after
an upgrade of trafilatura, a new LID model or an edited plugin is refused like a different pipeline instead of
resuming into a folder whose first half was made by other code.

The libraries listed are those whose version changes text or keep/drop decisions: the extractors and what
they lean on (trafilatura with jusText, htmldate and courlan; lxml; Resiliparse), the charset detectors
(faust-cchardet and charset-normalizer decide how bytes become text), the WARC parser (warcio decides which
records are documents), word splitting (spaCy, regex), the URL filter's domain split (tldextract and its bundled suffix
list), language ID (fastText), the tokenizer (tiktoken), the dedup hash (xxhash), and tamis itself; also the
Unicode database version, which changes `str.isalpha` and friends. Left out on purpose: Ray, pyarrow and
fsspec, which move and store the same bytes whatever their version (a new one must not force a full rerun).
Model and word-list files are hashed by content (sha256), once per process and file state.
"""

from __future__ import annotations

import hashlib
import os
import sys
import unicodedata
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tamis
from tamis.resources import resource_path
from tamis.steps.registry import plugin_file_of

if TYPE_CHECKING:
    from tamis.pipeline.spec import PipelineSpec, StepSpec

#: distributions whose version shapes text or decisions (see the module docstring for why these)
LIBRARIES = ("trafilatura", "justext", "htmldate", "courlan", "lxml", "resiliparse", "charset-normalizer",
             "faust-cchardet", "warcio", "spacy", "regex", "tldextract", "fasttext-numpy2-wheel", "fasttext",
             "tiktoken", "xxhash")

_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_VERSIONS: dict[str, str] | None = None


def library_versions() -> dict[str, str]:
    """Installed versions of LIBRARIES (those installed), tamis, and the Unicode database; cached."""
    global _VERSIONS
    if _VERSIONS is None:
        versions = {"tamis": tamis.__version__, "unicode": unicodedata.unidata_version}
        for name in LIBRARIES:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
        _VERSIONS = versions
    return dict(_VERSIONS)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's content, computed once per process for each (path, size, mtime)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def _local_files(value: Any) -> list[str]:
    """Local files named by a parameter value (a path string, or a list of them)."""
    if isinstance(value, str):
        return [value] if "://" not in value and os.path.isfile(value) else []
    if isinstance(value, list | tuple):
        return [path for item in value for path in _local_files(item)]
    return []


def step_files(step: StepSpec) -> dict[str, str]:
    """name -> sha256 of every file a step reads: the files its parameters name (models, word lists), and
    the resource shipped with tamis that it uses when such a parameter is left empty (Step.default_resources)."""
    found = {}
    for name, value in step.params.items():
        for path in _local_files(value):
            found[f"{step.name}.{name}: {path}"] = file_sha256(path)
    step_class = step.step_class
    for param, resource in getattr(step_class, "default_resources", {}).items():
        if not step.params.get(param):
            found[f"{step.name}.{param}: tamis/resources/{resource}"] = file_sha256(resource_path(resource))
    return found


def plugin_source(step: StepSpec) -> str | None:
    """sha256 of the source of the module that defines a step, when it does not ship with tamis."""
    step_class = step.step_class
    if step_class is None:
        return None
    module = step_class.__module__
    if module == "tamis" or module.startswith("tamis."):
        return None  # covered by tamis's version
    plugin = plugin_file_of(step_class)
    if plugin is not None:
        return plugin.sha256  # the bytes that ran, hashed when imported
    origin = getattr(sys.modules.get(module), "__file__", None)
    return file_sha256(origin) if origin and os.path.isfile(origin) else f"module {module} (source not found)"


def provenance(spec: PipelineSpec) -> dict[str, Any]:
    """Everything outside the pipeline's own parameters that decides its output (recorded in the manifest)."""
    steps = [spec.reader, *spec.steps, spec.writer]
    files: dict[str, str] = {}
    plugins: dict[str, str] = {}
    for step in steps:
        files.update(step_files(step))
        source = plugin_source(step)
        if source is not None:
            plugins[f"{step.name}: {step.step_class.__module__}"] = source  # type: ignore[union-attr]
    return {"libraries": library_versions(), "files": files, "plugin_sources": plugins}


def differences(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What changed between two provenance records, as short phrases for an error message."""
    if not old:
        return []
    changes = []
    for section in ("libraries", "files", "plugin_sources"):
        before, after = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                was, now = before.get(key, "absent"), after.get(key, "absent")
                if section != "libraries":
                    was, now = str(was)[:12], str(now)[:12]
                changes.append(f"{key} {was} -> {now}")
    return changes
