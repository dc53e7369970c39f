"""`tamis tokenize`: FineWeb-schema Parquet in, training-ready token files out (datatrove, Megatron, numpy)."""

from tamis.tokenize.formats import FORMATS, read_documents_tokens, read_stream
from tamis.tokenize.tokenizers import Tokenizer, TokenizerError, load_tokenizer

__all__ = ["FORMATS", "Tokenizer", "TokenizerError", "load_tokenizer", "read_documents_tokens", "read_stream"]
