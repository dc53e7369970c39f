"""Small synthetic corpora with known duplicates, written as FineWeb-schema shards (shared by dedup tests)."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.io.parquet import FINEWEB_SCHEMA

VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "vo", "ri", "pe", "do") for b in
         ("ran", "tel", "mos", "bik", "fun", "gal", "hep", "jot", "lix", "nup", "qor", "wez")]


def make_corpus(directory: Path, originals: int = 60, exact: int = 20, near: int = 20, shards: int = 3,
                words: int = 120, seed: int = 0) -> tuple[list[str], dict[str, int]]:
    """Shards of documents; returns (shard paths, id -> origin). Near copies change 3 words."""
    rng = random.Random(seed)
    docs = []
    for origin in range(originals):
        body = [rng.choice(VOCAB) for _ in range(words)]
        docs.append((f"doc-{origin:04d}-o", origin, body))
    for k in range(exact):
        origin = rng.randrange(originals)
        docs.append((f"doc-{origin:04d}-e{k}", origin, list(docs[origin][2])))
    for k in range(near):
        origin = rng.randrange(originals)
        body = list(docs[origin][2])
        for _ in range(3):
            body[rng.randrange(len(body))] = f"variant{rng.randrange(1000)}"
        docs.append((f"doc-{origin:04d}-n{k}", origin, body))
    rng.shuffle(docs)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    per = -(-len(docs) // shards)
    for s in range(shards):
        part = docs[s * per:(s + 1) * per]
        table = pa.table({
            "text": [" ".join(body[i:i + 12]) + "." for _, _, body in part for i in [0]] and
                    ["\n".join(" ".join(body[i:i + 12]) + "." for i in range(0, len(body), 12)) for _, _, body in part],
            "id": [d[0] for d in part], "dump": ["CC-TEST"] * len(part), "url": [f"https://x/{d[0]}" for d in part],
            "date": [f"2024-05-{1 + (i % 27):02d}T00:00:00Z" for i in range(len(part))],
            "file_path": ["synthetic"] * len(part), "language": ["en"] * len(part),
            "language_score": [0.9] * len(part), "token_count": [0] * len(part),
        }, schema=FINEWEB_SCHEMA)
        path = directory / f"part-s{s}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths, {d[0]: d[1] for d in docs}
