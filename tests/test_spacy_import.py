"""Word splitting loads spaCy without PyTorch (tamis.text.spacy_import), and PyTorch still imports afterwards."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

SCRIPT = """
import sys
from tamis.text.words import split_words
from tamis.text.languages import word_splitter_for
words = split_words("Hello world, this is a test.")
french = word_splitter_for("fra_Latn")("Bonjour le monde, c'est un essai.")
assert "spacy" in sys.modules and "torch" not in sys.modules, sorted(m for m in sys.modules if "torch" in m)[:5]
import torch
assert torch.tensor([1, 2]).sum().item() == 3
print(words, french)
"""


def test_splitting_words_does_not_import_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed: nothing to keep out")
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'Hello', 'world', ','" in done.stdout
