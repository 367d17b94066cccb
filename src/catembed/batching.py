"""Dynamic micro-batching with an embedding cache, for serving one model to many callers.

Callers ``await batcher.embed(texts)``. Texts already in the LRU cache are answered at once;
the others go on an asyncio queue. A single worker takes what is queued, waits up to
``max_wait_ms`` for more (or until ``max_batch_size`` texts), drops duplicates and texts that
were cached meanwhile, encodes the rest in one ``encode`` call on a dedicated thread (so one
encode runs at a time and the event loop stays free), caches the vectors and wakes the callers.

The memory it holds is bounded: the cache by entries, the queue by pending texts (a caller
that would exceed it gets :class:`Overloaded` at once instead of waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from catembed.backends import Encoder
from catembed.errors import CatembedError, ConfigError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 256
DEFAULT_MAX_WAIT_MS = 2.0
DEFAULT_CACHE_SIZE = 20_000
DEFAULT_MAX_PENDING_TEXTS = 8_192
CHARS_PER_TOKEN_ESTIMATE = 4


class Overloaded(CatembedError):
    """Too many texts are waiting to be encoded; the caller should retry later."""


@dataclass(frozen=True)
class BatchingConfig:
    """How the worker groups texts and how much it may hold in memory."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE  # texts per encode call
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS  # how long a batch waits for company
    cache_size: int = DEFAULT_CACHE_SIZE  # cached embeddings (entries); 0 disables the cache
    max_pending_texts: int = DEFAULT_MAX_PENDING_TEXTS  # queued texts before Overloaded

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max batch size must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ConfigError(f"max wait must be in [0, 1000] ms, got {self.max_wait_ms}")
        if self.cache_size < 0:
            raise ConfigError(f"cache size must not be negative, got {self.cache_size}")
        if self.max_pending_texts < 1:
            raise ConfigError(f"max pending texts must be at least 1, got {self.max_pending_texts}")


@dataclass
class BatcherStats:
    """Counters since start, reported by the server's ``/health``."""

    requests: int = 0
    texts: int = 0
    cache_hits: int = 0
    batches: int = 0
    encoded_texts: int = 0
    largest_batch: int = 0
    overloaded: int = 0
    encode_seconds: float = 0.0
    started: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["encode_seconds"] = round(self.encode_seconds, 3)
        del data["started"]
        data["uptime_seconds"] = round(time.time() - self.started, 3)
        return data


@dataclass(frozen=True)
class Embedded:
    """One text's unit-length vector and its token count."""

    vector: np.ndarray
    tokens: int


class LRUCache:
    """A dict that forgets its least recently used entries beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, Embedded] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> Embedded | None:
        item = self._data.get(key)
        if item is not None:
            self._data.move_to_end(key)
        return item

    def put(self, key: str, value: Embedded) -> None:
        if self.capacity == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)


def token_counter(encoder: Encoder) -> tuple[Callable[[list[str]], list[int]], str]:
    """Return a function counting the tokens the model sees per text, and how it counts.

    Uses the encoder's tokenizer (truncated to its ``max_seq_length``) when it has one, else
    estimates one token per four characters.
    """
    tokenizer = getattr(encoder, "tokenizer", None)
    max_length = getattr(encoder, "max_seq_length", None)
    if callable(tokenizer):

        def count(texts: list[str]) -> list[int]:
            if not texts:
                return []
            ids = tokenizer(texts, truncation=max_length is not None, max_length=max_length)
            return [len(row) for row in ids["input_ids"]]

        return count, "tokenizer"

    def estimate(texts: list[str]) -> list[int]:
        return [max(1, math.ceil(len(t) / CHARS_PER_TOKEN_ESTIMATE)) for t in texts]

    return estimate, "estimate"


@dataclass
class _Job:
    texts: list[str]  # distinct texts not in the cache when the job was queued
    future: asyncio.Future[dict[str, Embedded]]


class MicroBatcher:
    """Batches ``encode`` calls from concurrent coroutines; see the module docstring.

    Use inside a running event loop: ``await start()``, ``await embed(texts)``, ``await stop()``.
    """

    def __init__(self, encoder: Encoder, config: BatchingConfig | None = None) -> None:
        self.encoder = encoder
        self.config = config or BatchingConfig()
        self.cache = LRUCache(self.config.cache_size)
        self.stats = BatcherStats()
        self.count_tokens, self.token_counting = token_counter(encoder)
        self.pending_texts = 0
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catembed-encode")
        self._worker: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self.loop = asyncio.get_running_loop()
            self._worker = asyncio.create_task(self._run(), name="catembed-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def embed(self, texts: Sequence[str]) -> list[Embedded]:
        """Return the embedding of every text, in order, batched with other callers' texts."""
        if self._worker is None:
            raise RuntimeError("MicroBatcher.start() must be awaited before embed()")
        self.stats.requests += 1
        self.stats.texts += len(texts)
        found: dict[str, Embedded] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):
            cached = self.cache.get(text)
            if cached is None:
                missing.append(text)
            else:
                found[text] = cached
        self.stats.cache_hits += sum(1 for text in texts if text in found)
        if missing:
            if self.pending_texts + len(missing) > self.config.max_pending_texts:
                self.stats.overloaded += 1
                raise Overloaded(
                    f"server busy: {self.pending_texts} texts waiting to be encoded; retry later"
                )
            job = _Job(missing, asyncio.get_running_loop().create_future())
            self.pending_texts += len(missing)
            self._queue.put_nowait(job)
            try:
                found.update(await job.future)
            finally:
                if not job.future.done():  # the caller went away: the worker skips the job
                    job.future.cancel()
        return [found[text] for text in texts]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].texts)
            deadline = loop.time() + self.config.max_wait_ms / 1000
            while size < self.config.max_batch_size:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                jobs.append(job)
                size += len(job.texts)
            try:
                await self._process(jobs)
            except Exception as error:  # never let one bad batch stop the worker
                logger.exception("encoding a batch failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
            finally:
                self.pending_texts -= sum(len(job.texts) for job in jobs)

    async def _process(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if not job.future.done()]
        results: dict[str, Embedded] = {}
        todo: list[str] = []
        for text in dict.fromkeys(t for job in live for t in job.texts):
            cached = self.cache.get(text)  # encoded by an earlier batch since it was queued
            if cached is None:
                todo.append(text)
            else:
                results[text] = cached
        for start in range(0, len(todo), self.config.max_batch_size):
            chunk = todo[start : start + self.config.max_batch_size]
            began = time.perf_counter()
            vectors, tokens = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._encode, chunk
            )
            self.stats.encode_seconds += time.perf_counter() - began
            self.stats.batches += 1
            self.stats.encoded_texts += len(chunk)
            self.stats.largest_batch = max(self.stats.largest_batch, len(chunk))
            for text, vector, count in zip(chunk, vectors, tokens, strict=True):
                results[text] = Embedded(vector, count)
                self.cache.put(text, results[text])
        for job in live:
            if not job.future.done():
                job.future.set_result({text: results[text] for text in job.texts})

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        vectors = self.encoder.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32), self.count_tokens(texts)

    def run_exclusive(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func`` on the encode thread, so it never overlaps an encode; blocks."""
        return self._executor.submit(func, *args, **kwargs).result()


class BatchedEncoder:
    """A blocking ``encode`` for code on other threads (the validator) that goes through the
    batcher and its cache, so its texts join the batches of concurrent HTTP requests.

    Calls it cannot serve from the cache (no normalisation, tensors, other outputs) run on the
    model directly, still one encode at a time. Other attributes come from the model.
    """

    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batcher.encoder, name)

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        plain = not args and set(kwargs) <= {
            "batch_size",
            "normalize_embeddings",
            "convert_to_numpy",
            "show_progress_bar",
        }
        plain = plain and kwargs.get("normalize_embeddings", False) is True
        plain = plain and kwargs.get("convert_to_numpy", True) is True
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        if not plain or not all(isinstance(text, str) for text in texts):
            return self._batcher.run_exclusive(
                self._batcher.encoder.encode, inputs, *args, **kwargs
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._batcher.loop
        if loop is None or running is loop:
            return self._batcher.run_exclusive(
                self._batcher.encoder.encode, inputs, *args, **kwargs
            )
        items = asyncio.run_coroutine_threadsafe(self._batcher.embed(texts), loop).result()
        vectors = np.stack([item.vector for item in items]) if items else np.zeros((0, 0))
        return vectors[0] if single else vectors
