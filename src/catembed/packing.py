"""Encoding the distinct texts of a training batch with as little padding as possible.

BERT-style mean-pooling models get their texts packed end to end into a few rows, each text
attending only to itself (a block-diagonal mask, positions restarting at 0): the encoder
then runs on almost no padding. Other models get the texts sorted by length and split into
runs, each padded only to its own longest text. Either way the graph is kept, so gradients
reach the encoder as from separate forward passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from sentence_transformers.util import batch_to_device

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# The cost of one more forward call, in padded tokens: runs shorter than this are merged.
DEFAULT_RUN_OVERHEAD_TOKENS = 96
# Tokens per packed row: longer rows waste attention work across texts that cannot see
# each other, shorter ones leave more padding at row ends.
PACKED_ROW_TOKENS = 24


def distinct_positions(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Return the distinct texts in first-seen order and, for each text, its distinct index."""
    index: dict[str, int] = {}
    positions = [index.setdefault(text, len(index)) for text in texts]
    return list(index), positions


def length_runs(lengths: Sequence[int], overhead: int = DEFAULT_RUN_OVERHEAD_TOKENS) -> list[range]:
    """Split positions ``0..n-1`` of ascending ``lengths`` into consecutive runs.

    Each run is padded to its last (longest) length; the split minimises padded tokens plus
    ``overhead`` per run (dynamic programming, O(n^2) for the few hundred texts of a batch).
    """
    n = len(lengths)
    if any(lengths[i] > lengths[i + 1] for i in range(n - 1)):
        raise ValueError("lengths must be sorted ascending")
    best = [0.0] + [math.inf] * n
    start_of = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end):
            cost = best[start] + overhead + (end - start) * lengths[end - 1]
            if cost < best[end]:
                best[end], start_of[end] = cost, start
    runs: list[range] = []
    end = n
    while end > 0:
        runs.append(range(start_of[end], end))
        end = start_of[end]
    return runs[::-1]


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Assign positions of ``lengths`` to rows holding at most ``capacity`` tokens each
    (first fit, longest first); a length above ``capacity`` gets a row of its own."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if row is None:
            rows.append([])
            room.append(capacity)
            row = len(rows) - 1
        rows[row].append(i)
        room[row] -= lengths[i]
    return rows


def packable(model: SentenceTransformer) -> bool:
    """Whether ``model`` can encode packed rows: a BERT encoder (learned absolute positions,
    so restarting ``position_ids`` restarts each text) under SDPA or eager attention,
    followed by mean pooling and modules that only read the sentence embedding."""
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model)
    if len(modules) < 2 or not isinstance(modules[0], Transformer):
        return False
    config = getattr(modules[0].auto_model, "config", None)
    pooling = modules[1]
    return (
        getattr(config, "model_type", None) == "bert"
        and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
        and isinstance(pooling, Pooling)
        and pooling.pooling_mode == "mean"
        and all(isinstance(m, Normalize) for m in modules[2:])
    )


def embed_packed(model: SentenceTransformer, token_ids: Sequence[list[int]]) -> torch.Tensor:
    """Embed distinct texts, given as their ``token_ids``, packed into shared rows, keeping the
    graph; row ``i`` of the result is the embedding of text ``i``, as ``model`` would compute
    it alone."""
    lengths = [len(ids) for ids in token_ids]
    rows = pack_rows(lengths, max(PACKED_ROW_TOKENS, *lengths))
    width = max(sum(lengths[i] for i in row) for row in rows)
    pad = model.tokenizer.pad_token_id or 0
    input_ids = [[pad] * width for _ in rows]
    positions = [[0] * width for _ in rows]
    segments = [[-1] * width for _ in rows]
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            end = start + lengths[i]
            input_ids[r][start:end] = token_ids[i]
            positions[r][start:end] = range(lengths[i])
            segments[r][start:end] = [i] * lengths[i]
            start = end
    device = model.device
    segment = torch.tensor(segments, device=device)
    same = (segment[:, :, None] == segment[:, None, :])[:, None]  # padding sees padding only
    transformer = model[0]
    encoder: Any = transformer.auto_model
    if encoder.config._attn_implementation == "eager":
        blocked = torch.finfo(encoder.dtype).min
        mask: torch.Tensor = torch.zeros(same.shape, device=device).masked_fill(~same, blocked)
    else:
        mask = same
    ids = torch.tensor(input_ids, device=device)
    features = transformer(
        {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": torch.tensor(positions, device=device),
            "token_type_ids": torch.zeros_like(ids),
        }
    )
    tokens = features["token_embeddings"].reshape(-1, features["token_embeddings"].shape[-1])
    flat = segment.reshape(-1)
    kept = flat >= 0
    sums = tokens.new_zeros(len(token_ids), tokens.shape[-1]).index_add(0, flat[kept], tokens[kept])
    pooled = sums / torch.tensor(lengths, device=device, dtype=sums.dtype)[:, None]
    output = {"sentence_embedding": pooled}
    for module in list(model)[2:]:
        output = module(output)
    embeddings: torch.Tensor = output["sentence_embedding"]
    return embeddings


def embed_distinct(
    model: SentenceTransformer, texts: Sequence[str], token_ids: Sequence[list[int]]
) -> torch.Tensor:
    """Embed distinct ``texts`` (tokenized as ``token_ids``), keeping the graph: packed when
    the model allows it, else in length-sorted runs; row ``i`` of the result is the
    embedding of ``texts[i]``."""
    if packable(model):
        return embed_packed(model, token_ids)
    lengths = [len(ids) for ids in token_ids]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    parts = []
    for run in length_runs([lengths[i] for i in order]):
        features = model.preprocess([texts[order[j]] for j in run])
        features = batch_to_device(features, model.device)
        parts.append(model(features)["sentence_embedding"])
    stacked = torch.cat(parts)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return stacked[inverse.to(stacked.device)]


def token_ids(model: SentenceTransformer, texts: Sequence[str]) -> dict[str, list[int]]:
    """Token ids per distinct text (special tokens included, truncated to max_seq_length)."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    encoded = model.tokenizer(distinct, truncation=True, max_length=model.max_seq_length)
    return dict(zip(distinct, encoded["input_ids"], strict=True))
