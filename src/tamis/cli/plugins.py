"""Where `tamis run` and `tamis steps` look for step plugins (a light module: the CLI's entry point imports it)."""

from __future__ import annotations

import os
from pathlib import Path

import click


def plugin_dirs(extra: tuple[str, ...], no_plugins: bool = False) -> list[str]:
    """`--plugins` directories, TAMIS_PLUGIN_PATH, and ./filters when it exists; none with `--no-plugins`."""
    if no_plugins:
        if extra:
            raise click.UsageError("--plugins and --no-plugins contradict each other")
        return []
    dirs = list(extra)
    dirs += [p for p in os.environ.get("TAMIS_PLUGIN_PATH", "").split(os.pathsep) if p]
    if Path("filters").is_dir():
        dirs.append("filters")
    return dirs
