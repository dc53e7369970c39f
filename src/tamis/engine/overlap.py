"""An output folder must be apart from the shards a command reads (tokenize, dedup, sample).

Why: these commands read Parquet shards, often a run's `data/`, and write into `--output`. Pointed at the
same place, they would damage what they read:
- `tamis dedup 'out/data/**/*.parquet' --output out` names each final shard as its input, so it would
  replace its own inputs while a later task (or a retry) still needs them;
- `tamis sample out --output out` would overwrite each shard with its sample;
- `tamis tokenize out --output out` would write its manifest over the run's, and `--overwrite` would delete the
  run's commit markers.
So the output may not hold an input under its `data/`, be a run's output that an input belongs to, or lie
inside an input's `data/`. A folder beside or above them is fine.

Nor may a reader's output be any `tamis run`'s output, or lie under one's `data/`, even one it does not read:
`tamis dedup` would write its final shards among (or over) that run's, tokenize's `--overwrite` would delete the
run's manifest and commit markers, and the run's dataset would change without a word.
"""

from __future__ import annotations

import posixpath
from typing import Any

from tamis.engine.run_output import find_run_root, is_run_output
from tamis.io.redact import public_url
from tamis.io.storage import filesystem, url_of


class OverlapError(ValueError):
    """`--output` is where the shards a command reads are."""


def _normal(fs: Any, path: str) -> str:
    """`path` as its file system's URL: absolute for a local path, no trailing slash."""
    return url_of(fs, posixpath.normpath(path)).rstrip("/")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(f"{folder}/")


def check_apart(output: str, inputs: list[str], runs: bool = True) -> None:
    """Raise OverlapError, naming both, when `output` would overwrite or mix with the shards of `inputs`
    (files, folders, globs or run outputs). `runs=False` leaves out the runs (for `tamis run`, whose inputs
    are WARC files, finding a run would mean a request per input on a web server; and whose output is a run's):
    the run an input belongs to, and whether the output is a run's (refused for the readers)."""
    out_fs, out_path = filesystem(output)
    out = _normal(out_fs, out_path)
    for given in inputs:
        fs, path = filesystem(given)
        source = _normal(fs, path)
        root = find_run_root(fs, path) if runs else None
        run = _normal(fs, root) if root is not None else None
        if source == out or _inside(source, f"{out}/data") or (
                run is not None and (out == run or _inside(out, f"{run}/data"))):
            raise OverlapError(
                f"--output {public_url(output)} and the input {public_url(given)} are the same place: the output "
                "would overwrite or mix with the shards it reads. Give a folder apart from them")
    if runs:
        _check_not_a_run(out_fs, out_path, output)


def _check_not_a_run(fs: Any, path: str, output: str) -> None:
    """Raise OverlapError when the output of a reader (tokenize, dedup, sample) is, or is under the data/ of, the
    output of a `tamis run`."""
    root = find_run_root(fs, path)
    if root is None or not is_run_output(fs, root):
        return
    where = "is the output" if _normal(fs, root) == _normal(fs, path) else "lies inside the data/ folder"
    raise OverlapError(
        f"--output {public_url(output)} {where} of a `tamis run` ({public_url(url_of(fs, root))}): what this "
        "command writes would mix with that run's shards and files. Give a folder apart from it")
