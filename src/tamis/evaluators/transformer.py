"""The `tiny-lm` proxy model: a small GPT-2-tokenised causal transformer, trained and scored with torch.

Kept deliberately small (2 layers, d_model 128, context 128: about 6.5 M parameters, most of them the tied
50,257-token embedding) so that a variant trains in a minute or two on one CPU core. Everything that draws
random numbers is seeded from the ablation seed, deterministic algorithms are requested and the thread
count is fixed, so a seed gives the same metrics on the same machine.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import tiktoken
import torch
import torch.nn.functional as F
from torch import nn

from tamis.evaluators.benchmarks import Item
from tamis.tokenize.tokenizers import gpt2_cut_encoding

GPT2_VOCAB = 50257


def encoding_for(vocab_size: int) -> tiktoken.Encoding:
    """GPT-2's BPE, or GPT-2's BPE cut to its first `vocab_size - 1` ranks plus end-of-text (the
    `gpt2-<vocab_size>` tokenizer of `tamis tokenize`: a complete byte-level BPE that encodes any text, only
    into more tokens, with a several times cheaper output layer)."""
    return gpt2_cut_encoding(vocab_size)


@dataclass
class ModelConfig:
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    context: int = 128
    vocab_size: int = GPT2_VOCAB

    @property
    def eot(self) -> int:
        return self.vocab_size - 1

    def encoding(self) -> tiktoken.Encoding:
        return encoding_for(self.vocab_size)


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.norm1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, 4 * config.d_model), nn.GELU(),
                                 nn.Linear(4 * config.d_model, config.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.context, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.position(positions)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.embed.weight.T  # tied output layer

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits(self.hidden(tokens))


def deterministic(seed: int, threads: int, device: str) -> torch.device:
    """Seed everything, ask for deterministic kernels, fix the thread count; returns the device to use."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device(device)


def token_stream(texts: Sequence[str], config: ModelConfig, limit: int | None = None) -> torch.Tensor:
    """The texts' tokens, each document followed by end-of-text, cut at `limit` tokens."""
    stream: list[int] = []
    for tokens in config.encoding().encode_ordinary_batch(list(texts), num_threads=1):
        stream += tokens + [config.eot]
        if limit is not None and len(stream) >= limit:
            break
    return torch.tensor(stream[:limit] if limit is not None else stream, dtype=torch.long)


def windows(stream: torch.Tensor, context: int) -> torch.Tensor:
    """Non-overlapping (context + 1)-token windows (inputs plus the next-token targets)."""
    count = (len(stream) - 1) // context
    if count < 1:
        return torch.empty((0, context + 1), dtype=torch.long)
    return torch.stack([stream[i * context: i * context + context + 1] for i in range(count)])


def train(model: TinyLM, stream: torch.Tensor, *, seed: int, epochs: int, batch_size: int, lr: float,
          weight_decay: float, device: torch.device) -> list[float]:
    """AdamW with linear warm-up and cosine decay over the stream's windows; returns the loss per step."""
    data = windows(stream, model.config.context)
    if not len(data):
        raise ValueError(f"{len(stream)} tokens are fewer than one context of {model.config.context}")
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, total // 10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / total)))
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), batch_size):
            batch = data[order[start:start + batch_size]].to(device)
            with autocast(device):
                logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, model.config.vocab_size), batch[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
    return losses


@torch.no_grad()
def mean_loss(model: TinyLM, stream: torch.Tensor, device: torch.device, batch_size: int = 32) -> float:
    """Mean next-token cross-entropy (nats) over the stream's windows."""
    data = windows(stream, model.config.context)
    if not len(data):
        raise ValueError(f"validation text has {len(stream)} tokens, fewer than one context")
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        batch = data[start:start + batch_size].to(device)
        with autocast(device):
            logits = model(batch[:, :-1])
        targets = batch[:, 1:].reshape(-1)
        total += F.cross_entropy(logits.float().reshape(-1, model.config.vocab_size), targets,
                                 reduction="sum").item()
        count += batch[:, 1:].numel()
    return total / count


@torch.no_grad()
def bits_per_byte(model: TinyLM, texts: Sequence[str], device: torch.device, batch_size: int = 32) -> float:
    """Bits per UTF-8 byte of `texts`, each scored as its own document after end-of-text.

    Tokenizer-independent (a model with a smaller vocabulary is not favoured): the summed next-token loss
    in bits over the bytes of the text. A document longer than the context is cut into consecutive windows;
    every token after the leading end-of-text is predicted exactly once.
    """
    encoding = model.config.encoding()
    eot, context = model.config.eot, model.config.context
    windows_: list[list[int]] = []
    total_bytes = 0
    for tokens, text in zip(encoding.encode_ordinary_batch(list(texts), num_threads=1), texts, strict=True):
        if not tokens:
            continue
        total_bytes += len(text.encode("utf-8"))
        full = [eot] + tokens
        windows_ += [full[start:start + context + 1] for start in range(0, len(full) - 1, context)]
    if not total_bytes:
        raise ValueError("no reference text to score")
    model.eval()
    order = sorted(range(len(windows_)), key=lambda i: (len(windows_[i]), i))
    nats = 0.0
    for start in range(0, len(order), batch_size):
        chunk = [windows_[i] for i in order[start:start + batch_size]]
        width = max(map(len, chunk))
        batch = torch.zeros((len(chunk), width), dtype=torch.long)
        targets = torch.full((len(chunk), width - 1), -100, dtype=torch.long)
        for row, window in enumerate(chunk):
            batch[row, :len(window)] = torch.tensor(window)
            targets[row, :len(window) - 1] = torch.tensor(window[1:])
        with autocast(device):
            logits = model(batch[:, :-1].to(device))
        nats += F.cross_entropy(logits.float().reshape(-1, model.config.vocab_size), targets.reshape(-1).to(device),
                                ignore_index=-100, reduction="sum").item()
    return nats / math.log(2) / total_bytes


def autocast(device: torch.device):
    """bf16 autocast on CUDA (tensor cores), nothing on the CPU (where fp32 is what is deterministic and fast)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def choice_scores(model: TinyLM, requests: Sequence[tuple[str, str]], device: torch.device,
                  batch_size: int = 32) -> list[float]:
    """Per-token log-likelihood of each continuation given its context (contexts cut on the left to fit)."""
    encoding = model.config.encoding()
    eot = model.config.eot
    length = model.config.context + 1
    encoded = []
    for context, continuation in requests:
        target = encoding.encode_ordinary(continuation)[-(length - 1):] or [eot]
        full = ([eot] + encoding.encode_ordinary(context) + target)[-length:]
        encoded.append((full, len(target)))
    model.eval()
    # batches of similar lengths waste less on padding; the order is fixed, so results are too
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), i))
    scores: list[float] = [0.0] * len(encoded)
    for start in range(0, len(order), batch_size):
        members = order[start:start + batch_size]
        chunk = [encoded[i] for i in members]
        width = max(len(full) for full, _ in chunk)
        batch = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (full, _) in enumerate(chunk):
            batch[row, :len(full)] = torch.tensor(full)
        with autocast(device):
            hidden = model.hidden(batch[:, :-1].to(device))
        # the output layer only where a continuation token is predicted: most positions are context
        rows = torch.tensor([row for row, (_, n) in enumerate(chunk) for _ in range(n)])
        positions = torch.tensor([p for full, n in chunk for p in range(len(full) - 1 - n, len(full) - 1)])
        targets = torch.tensor([t for full, n in chunk for t in full[-n:]])
        with autocast(device):
            picked_logits = model.logits(hidden[rows.to(device), positions.to(device)])
        logprobs = F.log_softmax(picked_logits.float(), dim=-1).cpu()
        picked = logprobs[torch.arange(len(targets)), targets]
        offset = 0
        for index, (_, n_target) in zip(members, chunk, strict=True):
            scores[index] = picked[offset:offset + n_target].sum().item() / n_target
            offset += n_target
    return scores


def accuracy(model: TinyLM, items: Sequence[Item], device: torch.device) -> float:
    """Share of items whose gold choice has the highest per-token log-likelihood."""
    requests = [request for item in items for request in item.requests]
    scores = choice_scores(model, requests, device)
    correct, offset = 0, 0
    for item in items:
        chunk = scores[offset:offset + len(item.requests)]
        offset += len(item.requests)
        correct += int(max(range(len(chunk)), key=chunk.__getitem__) == item.gold)
    return correct / len(items)
