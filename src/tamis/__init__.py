"""tamis: FineWeb-faithful LLM-pretraining text from raw web crawls, on Ray."""

__version__ = "0.1.0"
