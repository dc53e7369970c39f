"""The libraries the tamis and datatrove sides of a benchmark both run: one list for both sides.

Their versions must be the same on both sides for a comparison to measure the two pipelines and not two
versions of trafilatura or lxml. `setup_datatrove_venv.sh` runs this file with the tamis environment's
Python and installs what it prints (`name==version`, one per line) in the datatrove venv;
`datatrove_fineweb.py` reports the datatrove venv's versions of the same list, and `bench_recipe.py` compares
them in its header. Standard library only: it runs in either environment.
"""

from __future__ import annotations

from importlib import metadata

#: imported by both sides' benchmarked steps: extraction, its parser, the WARC reader, the Parquet writer,
#: GPT-2 token counting and the English word tokenizer of the quality filters
SHARED_LIBRARIES = ("trafilatura", "lxml", "warcio", "pyarrow", "tiktoken", "spacy")


def installed_versions() -> dict[str, str]:
    """This environment's version of each shared library it has."""
    versions = {}
    for package in SHARED_LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


if __name__ == "__main__":
    for name, version in installed_versions().items():
        print(f"{name}=={version}")
