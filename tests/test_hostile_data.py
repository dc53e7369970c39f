"""Data never steers the terminal or the file system: hostile URLs, paths, dump names and drop reasons.

The WARCs are written here from real pages of ../shared/data, with hostile headers; every run is on a real local
Ray.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import AEB_PAGES, WARC_DIR
from rich.console import Console
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tamis.cli.main import cli
from tamis.cli.summary import print_summary
from tamis.display import plain, visible
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import PipelineError, parse_pipeline

ESC = "\x1b"


def real_pages(n: int) -> list[bytes]:
    pages = sorted(AEB_PAGES.glob("*.html.gz"))[:n]
    if len(pages) < n:
        pytest.skip(f"shared pages not found at {AEB_PAGES}")
    return [gzip.decompress(p.read_bytes()) for p in pages]


def write_warc(path: Path, urls: list[str], is_part_of: str | None = None) -> Path:
    """A gzipped WARC with one response record per url (real HTML pages), after an optional warcinfo."""
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        if is_part_of is not None:
            info = writer.create_warcinfo_record(path.name, {"isPartOf": is_part_of, "operator": "tamis tests"})
            writer.write_record(info)
        for url, page in zip(urls, real_pages(len(urls)), strict=True):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(page), http_headers=headers)
            writer.write_record(record)
    return path


def test_visible_escapes_controls_and_bidi() -> None:
    assert visible(f"a{ESC}[2Jb\x07\u202ec\u2066d") == "a\\x1b[2Jb\\x07\\u202ec\\u2066d"
    assert visible("line\nnext\tx") == "line\\x0anext\\x09x"
    assert visible("line\nnext", multiline=True) == "line\nnext"
    assert visible("\x9b31m") == "\\x9b31m"  # a C1 control sequence introducer
    assert plain("[/nope] [red]x").plain == "[/nope] [red]x"


@pytest.fixture(scope="module")
def hostile_run(ray_session, tmp_path_factory) -> Path:
    """A run on two real pages, one of them under a URL full of markup and escape sequences."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    hostile = f"https://e.org/[/nope]{ESC}[2J[red]{ESC}]0;x{ESC}\\"
    warc = write_warc(tmp_path / "hostile.warc.gz", [hostile, "https://example.org/fine"])
    out = tmp_path / "out"
    assert run_pipeline(parse_pipeline({"steps": [{"step": "trafilatura"}]}), [str(warc)], str(out),
                        show_progress=False).ok
    return out


def test_hostile_url_in_inspect(hostile_run: Path) -> None:
    out = hostile_run
    result = CliRunner().invoke(cli, ["inspect", str(out), "--sample", "5", "--where", "'nope' in url"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert ESC not in result.output
    assert "https://e.org/[/nope]\\x1b[2J[red]\\x1b]0;x\\x1b" in result.output


def test_missing_input_with_markup_in_paths_listing(ray_session, tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "real.warc.gz").write_bytes((WARC_DIR / "cc-main-2024-22_whirlwind.warc.gz").read_bytes())
    listing = tmp_path / "warc.paths"
    # (a line that is not UTF-8 makes the whole listing a clear error before any task: tests/test_hostile_input.py)
    lines = f"real.warc.gz\nmissing[/b].warc.gz\nmissing{ESC}[31m.warc.gz\n".encode()
    listing.write_bytes(lines)
    stream = io.StringIO()
    out = tmp_path / "out"
    result = run_pipeline(parse_pipeline({"steps": [{"step": "trafilatura"}]}), [str(listing)], str(out),
                          paths_base=str(base), console=Console(file=stream, width=300), show_progress=False)
    print_summary(Console(file=stream, width=300), result)
    assert len(result.completed) == 1
    assert sorted(result.failed) == [f"{base}/missing{ESC}[31m.warc.gz", f"{base}/missing[/b].warc.gz"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and len(manifest["failed"]) == 2
    printed = stream.getvalue()
    assert "missing[/b].warc.gz" in printed and "missing\\x1b[31m.warc.gz" in printed and ESC not in printed


PLUGIN = '''
from tamis.steps.registry import register_filter


@register_filter("markup_reason")
def markup_reason(text, metadata):
    """Drops every other document with a reason full of markup and escapes."""
    if len(text) % 2:
        return False, "[bold red]owned[/nope] \\x1b[2J"
    return True
'''


def test_plugin_drop_reason_with_markup(ray_session, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "markup_reason.py").write_text(PLUGIN)
    spec = parse_pipeline({"plugins": [str(plugins)], "steps": [{"step": "trafilatura"}, {"step": "markup_reason"}]})
    out = tmp_path / "out"
    result = run_pipeline(spec, [str(WARC_DIR / "dolma_sample-0000.warc.gz")], str(out), show_progress=False)
    assert result.counters.steps["markup_reason"].dropped
    stream = io.StringIO()
    print_summary(Console(file=stream, width=300), result)
    report = CliRunner().invoke(cli, ["stats", str(out)], env={"COLUMNS": "300"})
    assert report.exit_code == 0, report.output
    for printed in (stream.getvalue(), report.output):
        assert "[bold red]owned[/nope] \\x1b[2J" in printed and ESC not in printed


@pytest.mark.parametrize("value", ["..", "../../x", "a/b", "", ".", "-rf", ".hidden", "x" * 300])
def test_bad_dump_parameter_fails_validation(value: str) -> None:
    with pytest.raises(PipelineError, match=r"reader \(warc\): dump: "):
        parse_pipeline({"reader": {"step": "warc", "dump": value}})


def test_warcinfo_dump_names_never_leave_data(ray_session, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    cases = {"dotdot": "..", "up": "../../x", "slash": "a/b", "empty": "", "dot": ".", "good": "my-dump_1.0"}
    files = [str(write_warc(inputs / f"{name}.warc.gz", [f"https://example.org/{name}"], is_part_of=value))
             for name, value in cases.items()]
    out = tmp_path / "run" / "out"
    result = run_pipeline(parse_pipeline({"steps": [{"step": "trafilatura"}]}), files, str(out),
                          show_progress=False)
    assert result.ok and result.totals["kept"] == len(cases)
    shards = sorted(p.relative_to(out).parts[:2] for p in (tmp_path / "run").rglob("*.parquet"))
    assert shards == [("data", "my-dump_1.0")] + [("data", "unknown")] * (len(cases) - 1)
    dumps = {row["url"].rsplit("/", 1)[1]: row["dump"] for p in out.glob("data/*/*.parquet")
             for row in pq.read_table(p).to_pylist()}
    assert dumps == {name: "my-dump_1.0" if name == "good" else "unknown" for name in cases}
    # --overwrite removes everything the run wrote: nothing was left outside data/
    run_pipeline(parse_pipeline({"steps": [{"step": "token_count"}]}), files, str(out), overwrite=True,
                 show_progress=False)
    assert not list((tmp_path / "run").glob("*.parquet")) and not list(out.glob("*.parquet"))


@pytest.mark.parametrize("expression", [
    "re.enum.sys.modules['os'].system('touch {marker}')",
    "url.__class__.__mro__[1].__subclasses__() and open('{marker}', 'w')",
    "(lambda: __import__('os').system('touch {marker}'))()",
    "[__import__('os').system('touch {marker}') for _ in (1,)]",
    "__import__('os').system('touch {marker}')",
    "getattr(url, 'startswith')('{marker}')",
    "eval(\"open('{marker}', 'w')\")",
    "len(*url)",
])
def test_where_is_not_eval(hostile_run: Path, tmp_path: Path, expression: str) -> None:
    marker = tmp_path / "owned"
    result = CliRunner().invoke(cli, ["inspect", str(hostile_run), "--where", expression.format(marker=marker)])
    assert result.exit_code == 2, result.output
    assert "not allowed in --where" in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_where_keeps_its_documented_forms(hostile_run: Path) -> None:
    for expression, expected in [("chars > 20 and 'fine' in url", 1), ("re.search('nope', url)", 1),
                                 ("re_search(r'^https://E\\.', url, True) or startswith(url, 'https://example')", 2),
                                 ("len(text) // 2 >= 0 and url not in ('a', 'b')", 2), ("chars < 0", 0)]:
        result = CliRunner().invoke(cli, ["inspect", str(hostile_run), "--where", expression, "--json"])
        assert result.exit_code == 0, (expression, result.output)
        assert json.loads(result.output)["candidates"] == expected, expression


def test_where_language_bounds() -> None:
    from tamis.stats.where import WhereError, compile_where

    row = {"url": "https://e.org/x", "chars": 10, "text": "abc"}
    assert compile_where("chars * 2 + 1 == 21 and not (url is None) and -chars < 0")(row)
    assert compile_where("'x' if chars > 5 else ''")(row)
    for bad in ("_secret", "url[0]", "{'a': 1}", "f'{url}'", "(x := 1)", "len(url, key=1)", "print(url)",
                "re.compile('a')", "re.search"):
        with pytest.raises(WhereError, match="not allowed in --where"):
            compile_where(bad)
    for costly in ("9 ** 9 ** 9", "'a' * 10 ** 9", "((10 ** 64) ** 64) ** 64"):
        with pytest.raises(WhereError, match="too large|would be built"):
            compile_where(costly)(row)
    with pytest.raises(WhereError, match="bad regular expression"):
        compile_where("re_search('(', text)")(row)
