"""Files the word-splitting libraries leave in, or load from, the system temp folder, kept out of it.

- **jieba** (Chinese, through spaCy) stores its parsed dictionary as `<temp>/jieba.cache` and, for its default
  dictionary, loads that file back with `marshal` without any check. On a shared machine another user can write
  that file first and so decide how every tamis run there splits Chinese (FineWeb-2's filters and dedup
  shingles), or crash it. `use_private_jieba_cache` points jieba at tamis's per-user cache folder, in a
  subfolder named after jieba's version and its dictionary's content, and quiets its progress messages.
- **sklearn-crfsuite** models unpickled by pyvi (Vietnamese, 0.6 MB) and khmer-nltk (Khmer, 17.7 MB) write
  their model to a new temp file and delete it only when the object is collected, which module-level models
  never are before the process ends: every process that split either language left its files in /tmp.
  `release_crf_model_file` opens the model's tagger, then deletes the file: crfsuite holds the model once
  open (and on POSIX an open file outlives its name in any case).

The tokens are unchanged: jieba's cache holds the dictionary it would otherwise parse, and the CRF taggers are
the same objects (the FineWeb-2 parity tests run on these splitters).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from tamis.cache import private_cache_folder


def use_private_jieba_cache() -> None:
    """Make jieba's default tokenizer keep its dictionary cache in tamis's per-user cache; call before jieba
    first splits a text (spaCy's Chinese tokenizer does so when it is built)."""
    import jieba

    dictionary = Path(jieba.__file__).parent / jieba.DEFAULT_DICT_NAME  # the one tamis uses, spaCy's default
    # named after jieba's version and the dictionary's content (not its path): one entry for every environment
    key = hashlib.sha256(jieba.__version__.encode() + b"\0" + dictionary.read_bytes()).hexdigest()
    jieba.dt.tmp_dir = str(private_cache_folder(f"jieba-{key[:16]}"))
    jieba.setLogLevel(logging.WARNING)


def release_crf_model_file(model: Any) -> None:
    """Open an unpickled sklearn-crfsuite model's tagger, then delete the temp file it was written to."""
    if model.tagger_ is None:  # no model file: nothing was written
        return
    model.modelfile.cleanup()
