"""Importing this module registers every built-in step."""

import tamis.annotate.language  # noqa: F401
import tamis.annotate.language_prescreen  # noqa: F401
import tamis.annotate.tokens  # noqa: F401
import tamis.extract.steps  # noqa: F401
import tamis.filters.c4  # noqa: F401
import tamis.filters.fineweb_quality  # noqa: F401
import tamis.filters.ftfy_fix  # noqa: F401
import tamis.filters.gopher_quality  # noqa: F401
import tamis.filters.gopher_repetition  # noqa: F401
import tamis.filters.pii  # noqa: F401
import tamis.filters.symbol_lines  # noqa: F401
import tamis.filters.url  # noqa: F401
import tamis.io.parquet  # noqa: F401
import tamis.readers.parquet_input  # noqa: F401
import tamis.readers.warc  # noqa: F401
