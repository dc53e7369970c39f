"""Bad pipeline files fail before any Ray work, naming the file, the step and the field."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_DIR

from tamis.cli.main import cli
from tamis.pipeline.spec import PipelineError, load_pipeline, parse_pipeline
from tamis.steps.registry import available_steps


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipe.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("steps:\n  - step: trafilaturra\n",
         r"steps\[0\]\.step: unknown step 'trafilaturra'; did you mean 'trafilatura'"),
        ("steps:\n  - step: language_id\n    threshhold: 0.5\n",
         r"steps\[0\] \(language_id\)\.threshhold: unknown parameter\. Did you mean 'threshold'"),
        ("steps:\n  - step: language_id\n    threshold: high\n",
         r"steps\[0\] \(language_id\)\.threshold: expected float"),
        ("steps:\n  - step: language_id\n    languages: en\n", r"\.languages: expected list\[str\] or null"),
        ("steps:\n  - step: trafilatura\n    timeout: true\n", r"\.timeout: expected float"),
        ("steps:\n  - trafilatura\n  - trafilatura\n", r"steps\[1\]\.name: 'trafilatura' is used twice"),
        ("reader:\n  step: trafilatura\n", r"reader\.step: 'trafilatura' is a extractor, expected a reader"),
        ("steps:\n  - step: warc\n", r"steps\[0\]\.step: 'warc' is a reader"),
        ("stepz: []\n", r"unknown top-level key 'stepz'"),
        ("steps: {a: 1}\n", r"steps: expected a list"),
        ("steps:\n  - {name: x}\n", r"steps\[0\]: missing the 'step' key"),
        ("steps: [\n", r"not valid YAML"),
        # a key given twice: YAML would keep the last one silently
        ("steps:\n  - step: trafilatura\n    timeout: fast\n    deduplicate: true\n    timeout: 1.0\n",
         r"line 5: key 'timeout' is given twice \(first on line 3\)"),
        ("steps:\n  - step: trafilatura\nsteps:\n  - step: language_id\n",
         r"line 3: key 'steps' is given twice \(first on line 1\)"),
    ],
)
def test_bad_pipeline_names_the_field(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = write(tmp_path, yaml_text)
    with pytest.raises(PipelineError, match=expected) as info:
        load_pipeline(path)
    assert str(path) in str(info.value)


def test_equal_keys_in_different_mappings_and_merge_keys_are_fine(tmp_path: Path) -> None:
    """Only a key repeated within one mapping is refused: a merge key's mapping may be overridden."""
    path = write(tmp_path, "steps:\n  - step: trafilatura\n    timeout: 2.0\n"
                           "  - &lid {step: language_id, name: lid_en, languages: [en], threshold: 0.5}\n"
                           "  - {<<: *lid, name: lid_fr, languages: [fr], threshold: 0.7}\n")
    spec = load_pipeline(path)
    assert [s.params["threshold"] for s in spec.steps[1:]] == [0.5, 0.7]
    assert spec.steps[0].params["timeout"] == 2.0


def test_defaults_are_filled_and_fingerprint_tracks_parameters() -> None:
    a = parse_pipeline({"steps": [{"step": "language_id", "languages": ["en"]}]})
    b = parse_pipeline({"steps": [{"step": "language_id", "languages": ["en"], "threshold": 0.65}]})
    c = parse_pipeline({"steps": [{"step": "language_id", "languages": ["en"], "threshold": 0.7}]})
    assert a.steps[0].params["threshold"] == 0.65
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.fixture
def no_ray(monkeypatch):
    """Fails the test if the command tries to start or join Ray (another test may already hold one)."""
    import tamis.engine.runner

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was contacted before the configuration was checked")

    monkeypatch.setattr(tamis.engine.runner, "connect", refuse)


def test_cli_rejects_bad_pipeline_before_starting_ray(tmp_path: Path, no_ray) -> None:
    path = write(tmp_path, "steps:\n  - step: language_id\n    threshold: [1]\n")
    result = CliRunner().invoke(cli, ["run", str(path), "--input", str(SAMPLE_DIR / "*.gz"),
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "threshold" in result.output and str(path) in result.output
    assert not (tmp_path / "out").exists()


def test_cli_missing_input_exits_nonzero(tmp_path: Path, no_ray) -> None:
    path = write(tmp_path, "steps:\n  - step: trafilatura\n")
    result = CliRunner().invoke(cli, ["run", str(path), "--input", str(tmp_path / "nothing-*.warc.gz"),
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "no input file matches" in result.output


def test_cli_input_folder_says_to_give_its_files(tmp_path: Path, no_ray) -> None:
    path = write(tmp_path, "steps:\n  - step: trafilatura\n")
    result = CliRunner().invoke(cli, ["run", str(path), "--input", str(SAMPLE_DIR), "--output", str(tmp_path / "o")])
    assert result.exit_code == 1
    flat = "".join(result.output.split())  # the console wraps long lines (and folds long paths)
    assert "isafolder:giveitsfiles" in flat and "".join(f"{SAMPLE_DIR}/*.warc.gz".split()) in flat
    assert not (tmp_path / "o").exists()


def test_steps_command_lists_builtins() -> None:
    result = CliRunner().invoke(cli, ["steps"])
    assert result.exit_code == 0
    for name in ("warc", "parquet_input", "trafilatura", "resiliparse", "language_id", "url_filter",
                 "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality", "pii", "token_count",
                 "parquet"):
        assert name in result.output
    assert "threshold" in result.output and "0.65" in result.output


def test_every_builtin_step_named_in_the_readme_is_registered() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("### Built-in steps", 1)[1].split("\n\n", 2)[1]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    named = {name for cell in first_cells for name in re.findall(r"`([a-z0-9_]+)`", cell)}
    assert named and named <= set(available_steps()), named - set(available_steps())
    spec = parse_pipeline({"reader": {"step": "parquet_input"}, "steps": ["token_count"]})
    assert spec.reader.step == "parquet_input"


OUTPUT_COMMANDS = ["run", "tokenize", "dedup", "ablate", "sample"]


def output_command(tmp_path: Path, command: str) -> list[str]:
    """The arguments, before `--output`, of one of the commands that write an output folder."""
    pipeline = write(tmp_path, "steps:\n  - step: trafilatura\n")
    return {"run": ["run", str(pipeline), "--input", str(SAMPLE_DIR / "*.gz")],
            "tokenize": ["tokenize", str(tmp_path)], "dedup": ["dedup", str(tmp_path / "x.parquet")],
            "ablate": ["ablate", str(pipeline)], "sample": ["sample", str(tmp_path)]}[command]


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
@pytest.mark.parametrize("below", [False, True])
def test_every_output_option_refuses_a_file_before_starting(tmp_path: Path, no_ray, command: str,
                                                             below: bool) -> None:
    """A file where the output folder (or a folder on its way) should be: exit 2 naming it, nothing written;
    `run` and `tokenize` used to end in a FileExistsError traceback after planning the run."""
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    output = blocker / "out" if below else blocker
    args = output_command(tmp_path, command)
    result = CliRunner().invoke(cli, [*args, "--output", str(output)])
    assert result.exit_code == 2, result.output
    assert "is a file, not a folder" in result.output and "Traceback" not in result.output
    assert (str(blocker) in result.output) if below else ("it is a file" in result.output)
    assert blocker.read_text() == "not a folder"


def _unwritable_folder(tmp_path: Path) -> Path | None:
    """A folder this process cannot write: a 0555 one (not for root, which ignores modes), else /proc/sys."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/proc/sys")):
        if candidate.is_dir() and not os.access(candidate, os.W_OK):
            return candidate
    return None


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_an_output_that_cannot_be_written_is_refused_before_starting(tmp_path: Path, no_ray, command: str) -> None:
    locked = _unwritable_folder(tmp_path)
    if locked is None:
        pytest.skip("no folder here that this user cannot write")
    args = output_command(tmp_path, command)
    try:
        result = CliRunner().invoke(cli, [*args, "--output", str(locked / "out")], terminal_width=400)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert f"{str(locked)!r} cannot be written (no write permission)" in flat, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
@pytest.mark.parametrize("name", ["out [2024]", "out*", "s3://bucket/runs/what?"])
def test_an_output_path_with_glob_characters_is_refused_before_starting(tmp_path: Path, no_ray, command: str,
                                                                       name: str) -> None:
    """fsspec's listings read `*`, `?` and `[` in a folder's path as a pattern: a run into `out [2024]` went
    through, but its rerun ended in a FileNotFoundError traceback and `tamis tokenize` found no shards."""
    args = output_command(tmp_path, command)
    output = name if "://" in name else str(tmp_path / name)
    result = CliRunner().invoke(cli, [*args, "--output", output], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert "an output path cannot contain" in " ".join(result.output.split()), result.output
    assert not any(tmp_path.glob("out*"))


def test_an_input_named_literally_with_glob_characters_is_that_file(tmp_path: Path) -> None:
    """`data [1]/a*b.warc.gz` that exists is that file (it was "no input file matches"); a pattern that is no
    file's name is still a pattern."""
    from tamis.engine.inputs import expand_inputs

    folder = tmp_path / "data [1]"
    folder.mkdir()
    literal = folder / "a*b.warc.gz"
    literal.write_bytes(b"x")
    (folder / "aXb.warc.gz").write_bytes(b"y")
    files, sizes = expand_inputs([str(literal)])
    assert [Path(f) for f in files] == [literal] and sizes == {files[0]: 1}
    (tmp_path / "plain").mkdir()
    for name in ("a1.warc.gz", "a2.warc.gz"):
        (tmp_path / "plain" / name).write_bytes(b"z")
    files, _ = expand_inputs([str(tmp_path / "plain" / "a[12].warc.gz")])
    assert [Path(f).name for f in files] == ["a1.warc.gz", "a2.warc.gz"]
