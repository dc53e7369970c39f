"""Data files shipped in the package (see NOTICE.md for their sources and licences)."""

from importlib.resources import files
from pathlib import Path


def resource_path(name: str) -> Path:
    return Path(str(files(__name__).joinpath(name)))
