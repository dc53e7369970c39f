#!/usr/bin/env python3
"""A small nanoGPT-style trainer for `tamis ablate`'s `command` evaluator, over the `numpy` token format.

    evaluators:
      - evaluator: command
        command: python ../examples/train_nanogpt.py --request {request} --steps 200
    tokenize: {format: numpy, tokenizer: gpt2}

It reads the request tamis writes (docs/ablate.md, "The command contract"): `token_files` (flat token
arrays, `np.memmap`-able, each with a `.json` sidecar giving the dtype and the tokenizer), `token_format`,
`token_count`, `holdout_token_files`, `seed` and `metrics_path`. It trains a small causal transformer on
random windows of the tokens (nanoGPT's `get_batch` loop: AdamW, fixed steps, cosine decay), then writes
`{"train_loss", "val_loss", "tokens", "steps"}` to `metrics_path`. Only numpy and torch are needed: any
trainer that reads these files can take its place.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def load_tokens(paths: list[str]) -> tuple[np.ndarray, dict]:
    """Concatenate the shards' flat token arrays (nanoGPT's train.bin layout) and return the first sidecar."""
    arrays, sidecar = [], {}
    for path in paths:
        sidecar = json.loads(Path(path).with_suffix(".json").read_text())
        arrays.append(np.memmap(path, dtype=np.dtype(sidecar["dtype"]), mode="r"))
    return (np.concatenate(arrays) if arrays else np.empty(0, np.uint16)), sidecar


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
                   for z in self.qkv(self.ln1(x)).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
        x = x + self.out(y)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.ln = nn.LayerNorm(width)
        for module in self.modules():  # GPT-2's initialisation: small weights, so the first loss is ~log(vocab)
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tokens(idx) + self.positions(torch.arange(idx.shape[1], device=idx.device))
        return self.ln(self.blocks(x)) @ self.tokens.weight.T


def get_batch(data: np.ndarray, context: int, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    starts = torch.randint(len(data) - context - 1, (batch,), generator=generator)
    rows = [torch.from_numpy(np.asarray(data[s:s + context + 1], dtype=np.int64)) for s in starts.tolist()]
    stacked = torch.stack(rows)
    return stacked[:, :-1], stacked[:, 1:]


@torch.no_grad()
def evaluate(model: GPT, data: np.ndarray, context: int, vocab: int) -> float:
    """Mean loss over consecutive non-overlapping windows of `data`."""
    model.eval()
    count = (len(data) - 1) // context
    if count < 1:
        return math.nan
    windows = torch.stack([torch.from_numpy(np.asarray(data[i * context:i * context + context + 1], np.int64))
                           for i in range(count)])
    total = 0.0
    for start in range(0, count, 32):
        chunk = windows[start:start + 32]
        total += F.cross_entropy(model(chunk[:, :-1]).reshape(-1, vocab), chunk[:, 1:].reshape(-1),
                                 reduction="sum").item()
    return total / (count * context)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--request", default=os.environ.get("TAMIS_ABLATE_REQUEST"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    request = json.loads(Path(args.request).read_text())
    if request.get("token_format") != "numpy":
        print(f"expected the numpy token format (tokenize: {{format: numpy}}), got {request.get('token_format')!r}",
              file=sys.stderr)
        return 2
    train, sidecar = load_tokens(request["token_files"])
    assert len(train) == request["token_count"], (len(train), request["token_count"])
    vocab = int(sidecar["tokenizer"]["vocab_size"])
    torch.manual_seed(request["seed"])
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(request["seed"])
    model = GPT(vocab, args.context, args.width, args.layers, args.heads)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    losses = []
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        x, y = get_batch(train, args.context, args.batch, generator)
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    metrics = {"train_loss": sum(losses[-20:]) / len(losses[-20:]), "tokens": len(train), "steps": args.steps}
    if request.get("holdout_token_files"):
        held, _ = load_tokens(request["holdout_token_files"])
        metrics["val_loss"] = evaluate(model, held, args.context, vocab)
    Path(request["metrics_path"]).write_text(json.dumps({"metrics": metrics}))
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
