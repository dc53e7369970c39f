"""spaCy, imported without PyTorch.

tamis uses spaCy only for its rule-based tokenizers and sentencizer (datatrove's word splits). spaCy's
machine-learning library, thinc, imports PyTorch at import time whenever it is installed (it is, with the
`proxy` extra that `tamis ablate` needs) and asks it for CUDA devices. That cost every process that splits words,
the driver and each Ray worker, about 0.9 CPU seconds and 180 MiB of RSS on the development machine (1.48 s and
277 MiB to import spaCy and tokenize a sentence, against 0.62 s and 95 MiB without PyTorch), for nothing it
uses: the blank pipelines never run a model.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_LOCK = threading.Lock()


def import_spacy() -> ModuleType:
    """The `spacy` module; if neither it nor PyTorch is loaded yet, imported with `import torch` failing.

    Only the import is affected: thinc then records that PyTorch is absent (which no blank pipeline
    consults), and the marker is removed at once, so a later `import torch` in the same process (the
    tiny-lm evaluator) works as usual.
    """
    loaded = sys.modules.get("spacy")
    if loaded is not None:
        return loaded
    with _LOCK:
        if "torch" in sys.modules or "thinc" in sys.modules:
            import spacy

            return spacy
        sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
        try:
            import spacy
        finally:
            if sys.modules.get("torch", 0) is None:
                del sys.modules["torch"]
    return spacy
