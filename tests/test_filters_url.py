"""URL filter on small hand-made lists (the real lists are exercised by the parity test)."""

import io
import tarfile

import pytest

from tamis.batch import DocBatch
from tamis.filters.url import Reasons, URLFilter


@pytest.fixture(scope="module")
def lists_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("lists")
    with tarfile.open(root / "url_filterblacklistsv0_3_0.tar.gz", "w:gz") as archive:
        for name, content in {"domains": "# comment\nbad.com\nevil.example.org\n", "urls": "spam.net/page\n"}.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (root / "banned_words.txt").write_text("porn\n")
    (root / "soft_banned_words.txt").write_text("hot\nbabe\n")
    (root / "banned_subwords.txt").write_text("xxxvid\n")
    return str(root)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bad.com/x", Reasons.DOMAIN),
        ("https://www.bad.com/x", Reasons.DOMAIN),
        ("https://evil.example.org/", Reasons.SUBDOMAIN),
        ("https://example.org/", None),
        ("spam.net/page", Reasons.URL),
        ("https://site.com/porn/1", Reasons.HARD_BLACKLISTED),
        ("https://site.com/PORN/1", None),  # URL words keep their case
        ("https://site.com/hot", None),  # one soft word: under the threshold of 2
        ("https://site.com/hot-babe", Reasons.SOFT_BLACKLISTED),
        ("https://site.com/hot-hot", None),  # distinct words are counted
        ("https://site.com/best-XXX-vids", Reasons.BLACKLISTED_SUBWORD),
    ],
)
def test_rules(lists_path, url, expected):
    f = URLFilter(lists_path=lists_path)
    f.setup()
    assert f.check(url) == expected


def test_soft_threshold_is_a_parameter(lists_path):
    f = URLFilter(soft_word_threshold=1, lists_path=lists_path)
    f.setup()
    assert f.filter_batch(DocBatch({"text": ["", ""], "url": ["https://a.com/hot", "https://a.com/x"]})) == [
        Reasons.SOFT_BLACKLISTED,
        None,
    ]



def test_domain_cache_is_shared_by_copies_of_the_lists(lists_path, tmp_path, monkeypatch):
    """Each virtual environment has its own copy of datatrove's archive: copies share one cache entry, so
    the cache no longer grows by 36 MB with every new environment; other content gets its own entry."""
    import shutil
    from pathlib import Path

    from tamis.filters import url

    monkeypatch.setenv("TAMIS_CACHE_DIR", str(tmp_path / "cache"))
    original = Path(lists_path) / url.BLOCKLIST_ARCHIVE
    copy = Path(shutil.copytree(lists_path, tmp_path / "copy")) / url.BLOCKLIST_ARCHIVE
    url.load_block_lists.cache_clear()  # once per process: earlier tests loaded these lists already
    first = url.load_block_lists(lists_path)
    monkeypatch.setattr(url, "_read_archive", lambda path: pytest.fail(f"{path} parsed again"))
    assert url.load_block_lists(str(copy.parent)).urls == first.urls == frozenset({"spam.net/page"})
    entry = url._cache_file(copy)
    assert entry == url._cache_file(original) and entry.parent == tmp_path / "cache" / "url-domains"
    assert sorted(p.name for p in entry.parent.iterdir()) == sorted([entry.name, entry.with_suffix(".urls.txt").name])
    copy.write_bytes(original.read_bytes() + b"\0")
    assert url._cache_file(copy) != entry
