"""Files that tokenizer libraries read from or leave in the system temp folder (tamis.text.library_files).

Each case runs a fresh Python with its own TMPDIR (the system temp folder of `tempfile`, which the libraries use)
and its own TAMIS_CACHE_DIR, so that what is read from and left in either is this test's alone. A file planted in
TMPDIR plays another user of a shared /tmp.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tamis.annotate.tokens import count_tokens, parse_ranks
from tamis.resources import resource_path

SENTENCE = "Hello world, this is a test of the tokenizer."


def _python(code: str, tmp: Path, cache: Path) -> str:
    """Run `code` in a fresh interpreter with TMPDIR=`tmp` and TAMIS_CACHE_DIR=`cache`; its stdout."""
    env = {"HOME": str(tmp.parent), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp),
           "TAMIS_CACHE_DIR": str(cache), "LANG": "C.UTF-8"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    tmp, cache = tmp_path / "tmp", tmp_path / "cache"
    tmp.mkdir()
    return tmp, cache


def test_token_counts_ignore_a_tiktoken_copy_planted_in_the_temp_folder(folders) -> None:
    """tiktoken's reader would use `<temp>/data-gym-cache/<sha1 of the path>` instead of the file: plant one
    with the same number of ranks but the merges' order reversed (it gave 14 tokens here, not 12)."""
    tmp, cache = folders
    shipped = str(resource_path("gpt2.tiktoken"))
    lines = Path(shipped).read_bytes().splitlines()
    merges = lines[256:]
    planted = lines[:256] + [a.split()[0] + b" " + b.split()[1] for a, b in zip(reversed(merges), merges, strict=True)]
    copy = tmp / "data-gym-cache" / hashlib.sha1(shipped.encode()).hexdigest()
    copy.parent.mkdir()
    copy.write_bytes(b"\n".join(planted) + b"\n")

    out = _python("import json; from tamis.annotate.tokens import count_tokens; "
                  f"from tamis.tokenize.tokenizers import load_tokenizer; t = {[SENTENCE]!r}; "
                  "print(json.dumps([count_tokens(t), load_tokenizer('gpt2-1000').encode_batch(t)]))", tmp, cache)
    counts, cut = json.loads(out)
    assert counts == count_tokens([SENTENCE]) == [12]
    from tamis.tokenize.tokenizers import load_tokenizer

    assert cut == load_tokenizer("gpt2-1000").encode_batch([SENTENCE])
    assert sorted(p.name for p in copy.parent.iterdir()) == [copy.name]  # nothing written there either


def test_ranks_file_errors_name_the_line() -> None:
    assert parse_ranks(b"IQ== 0\n\nIg== 1\n", "r.tiktoken") == {b"!": 0, b'"': 1}
    with pytest.raises(ValueError, match=r"r.tiktoken, line 2: expected a base64 token and a rank"):
        parse_ranks(b"IQ== 0\nnot-base64! 1\n", "r.tiktoken")
    with pytest.raises(ValueError, match="line 1"):
        parse_ranks(b"IQ== zero\n", "r.tiktoken")


CHINESE = "我爱北京天安门，今天天气很好。"


def test_chinese_splitting_ignores_a_jieba_cache_planted_in_the_temp_folder(folders) -> None:
    """jieba loads `<temp>/jieba.cache` without a check; a planted empty dictionary changes its words."""
    tmp, cache = folders
    code = ("import json; from tamis.text.languages import split_words_for; "
            f"print(json.dumps(split_words_for({CHINESE!r}, 'cmn_Hani')))")
    clean = json.loads(_python(code, tmp, cache))
    assert sorted(p.name for p in tmp.iterdir()) == []
    (entry,) = cache.iterdir()
    assert entry.name.startswith("jieba-") and (entry / "jieba.cache").is_file()
    assert entry.stat().st_mode & 0o077 == 0  # owner only

    planted, empty_dictionary = tmp / "jieba.cache", marshal.dumps(({}, 1))
    planted.write_bytes(empty_dictionary)
    fresh_cache = cache.parent / "cache2"
    assert json.loads(_python(code, tmp, fresh_cache)) == clean
    assert len(clean) > 5 and "北京" in clean
    assert planted.read_bytes() == empty_dictionary
    assert sorted(p.name for p in tmp.iterdir()) == ["jieba.cache"]


def test_vietnamese_and_khmer_splitting_leave_no_model_files_in_the_temp_folder(folders) -> None:
    """pyvi's and khmer-nltk's CRF models are written to temp files that were left behind by every process."""
    tmp, cache = folders
    out = _python("import json, os, tempfile; from tamis.text.languages import split_words_for; "
                  "words = [split_words_for('Tôi yêu tiếng Việt rất nhiều.', 'vie_Latn'), "
                  "split_words_for('ខ្ញុំស្រលាញ់ភាសាខ្មែរ', 'khm_Khmr')]; "
                  "print(json.dumps([words, os.listdir(tempfile.gettempdir())]))", tmp, cache)
    (vietnamese, khmer), left_while_running = json.loads(out)
    assert vietnamese == ["Tôi", "yêu", "tiếng", "Việt", "rất", "nhiều", "."]
    assert khmer == ["ខ្ញុំ", "ស្រលាញ់", "ភាសា", "ខ្មែរ"]
    assert left_while_running == [] and list(tmp.iterdir()) == []


def test_a_cache_folder_not_ours_is_not_used(tmp_path: Path, monkeypatch) -> None:
    """A symlink where the cache folder should be (or another user's folder): a private folder instead."""
    from tamis.cache import private_cache_folder

    monkeypatch.setenv("TAMIS_CACHE_DIR", str(tmp_path / "cache"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "jieba-x").symlink_to(elsewhere)
    chosen = private_cache_folder("jieba-x")
    assert chosen.resolve() != elsewhere.resolve() and chosen.is_dir()
    assert os.stat(chosen).st_mode & 0o077 == 0
    wide = tmp_path / "cache" / "wide"
    wide.mkdir(mode=0o777)
    os.chmod(wide, 0o777)
    assert private_cache_folder("wide") == wide and os.stat(wide).st_mode & 0o077 == 0  # ours: tightened
