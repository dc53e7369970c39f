"""Resume never mixes outputs (the fingerprint covers libraries, model files, plugin sources), and plugins are
visible (every run and `tamis steps` list the plugin files imported; `--no-plugins` imports none)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, WARC_DIR
from rich.console import Console

from tamis.cli.main import cli
from tamis.engine.runner import OutputConflictError, run_pipeline
from tamis.pipeline import provenance as provenance_module
from tamis.pipeline.spec import parse_pipeline
from tamis.resources import resource_path

WARC = WARC_DIR / "cc-main-2024-22_whirlwind.warc.gz"

PLUGIN = '''
from tamis.steps.registry import register_filter


@register_filter("{name}")
def {name}(text, metadata, minimum: int = 3):
    """Keeps documents of at least `minimum` words."""
    return len(text.split()) >= minimum or (False, "short")
'''


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    return env


def test_changed_plugin_source_refuses_resume(ray_session, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "filters").mkdir(parents=True)
    plugin = work / "filters" / "prov_words.py"
    plugin.write_text(PLUGIN.format(name="prov_words"))
    pipeline = work / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"steps": [{"step": "trafilatura"}, {"step": "prov_words"}]}))
    out = tmp_path / "out"
    stream = io.StringIO()
    os.chdir(work)  # the run discovers ./filters like the CLI does, and records it relative to the cwd
    try:
        from tamis.cli.plugins import plugin_dirs
        from tamis.pipeline.spec import load_pipeline

        spec = load_pipeline(pipeline, plugin_dirs(()))
        first = run_pipeline(spec, [str(WARC)], str(out), console=Console(file=stream, width=300),
                             show_progress=False)
    finally:
        os.chdir(REPO)
    assert first.ok and first.completed
    digest = hashlib.sha256(plugin.read_bytes()).hexdigest()
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"path": "filters/prov_words.py", "module": "tamis_plugins.prov_words", "sha256": digest} in \
        manifest["plugins"]
    assert manifest["provenance"]["plugin_sources"] == {"prov_words: tamis_plugins.prov_words": digest}
    # whitespace normalised: the console wraps the plugins line, whose length depends on where the checkout is
    # and on the plugins other tests of the session loaded (a wrap there failed this test at /tmp/wt)
    assert "filters/prov_words.py (sha256 " in " ".join(stream.getvalue().split())
    # the same plugin, edited: a fresh `tamis run` (a new process, as in real use) refuses to resume
    plugin.write_text(PLUGIN.format(name="prov_words").replace(">= minimum", ">= minimum + 1"))
    command = [sys.executable, "-m", "tamis.cli.main", "run", str(pipeline), "-i", str(WARC), "-o", str(out),
               "--no-progress"]
    refused = subprocess.run(command, cwd=work, env=_env(), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert "prov_words: tamis_plugins.prov_words" in refused.stderr and "--overwrite" in refused.stderr
    assert "plugins: filters/prov_words.py" in refused.stderr
    # unchanged source again: the same process resumes (nothing redone)
    again = run_pipeline(spec, [str(WARC)], str(out), show_progress=False)
    assert again.skipped and not again.completed


def test_changed_model_file_refuses_resume(ray_session, tmp_path: Path) -> None:
    model = tmp_path / "lid.ftz"
    shutil.copyfile(resource_path("lid.176.ftz"), model)
    spec = parse_pipeline({"steps": [{"step": "trafilatura"}, {"step": "language_id", "model_path": str(model)},
                                     {"step": "token_count"}]})
    out = tmp_path / "out"
    assert run_pipeline(spec, [str(WARC)], str(out), show_progress=False).ok
    original = model.read_bytes()
    model.write_bytes(original + b"\0")
    with pytest.raises(OutputConflictError, match=r"language_id\.model_path"):
        run_pipeline(spec, [str(WARC)], str(out), show_progress=False)
    model.write_bytes(original)  # same content (a new mtime): the same fingerprint, so it resumes
    resumed = run_pipeline(spec, [str(WARC)], str(out), show_progress=False)
    assert resumed.skipped and not resumed.completed
    files = json.loads((out / "manifest.json").read_text())["provenance"]["files"]
    assert files[f"language_id.model_path: {model}"] == hashlib.sha256(original).hexdigest()
    assert files["token_count.ranks_path: tamis/resources/gpt2.tiktoken"] == \
        hashlib.sha256(resource_path("gpt2.tiktoken").read_bytes()).hexdigest()


def test_fingerprint_covers_library_versions(monkeypatch) -> None:
    spec = parse_pipeline({"steps": [{"step": "trafilatura"}]})
    before = spec.fingerprint()
    versions = provenance_module.library_versions()
    assert {"trafilatura", "lxml", "spacy", "tiktoken", "tamis"} <= set(versions)
    monkeypatch.setattr(provenance_module, "_VERSIONS", {**versions, "trafilatura": "0.0.1"})
    assert spec.fingerprint() != before
    assert provenance_module.differences({"libraries": versions}, spec.provenance()) == \
        [f"trafilatura {versions['trafilatura']} -> 0.0.1"]


def test_steps_lists_plugins_and_no_plugins_imports_none(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "filters").mkdir()
    (tmp_path / "filters" / "prov_listed.py").write_text(PLUGIN.format(name="prov_listed"))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"steps": [{"step": "prov_listed"}]}))
    (tmp_path / "q.yaml").write_text(yaml.safe_dump({"plugins": ["filters"], "steps": [{"step": "trafilatura"}]}))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    off = runner.invoke(cli, ["steps", "--no-plugins"], env={"COLUMNS": "200"})
    assert off.exit_code == 0 and "prov_listed" not in off.output
    refused = runner.invoke(cli, ["run", "p.yaml", "-i", str(WARC), "-o", str(tmp_path / "o"), "--no-plugins"])
    assert refused.exit_code == 2 and "unknown step 'prov_listed'" in refused.output.replace("\n", " ")
    refused = runner.invoke(cli, ["run", "q.yaml", "-i", str(WARC), "-o", str(tmp_path / "o"), "--no-plugins"])
    assert refused.exit_code == 2 and "plugins: 'filters' is not loaded" in refused.output.replace("\n", " ")
    assert not (tmp_path / "o").exists()
    on = runner.invoke(cli, ["steps"], env={"COLUMNS": "200"})
    assert on.exit_code == 0, on.output
    assert "filters/prov_listed.py (sha256 " in on.output and "prov_listed" in on.output
