"""Dynamic micro-batching with an embedding cache, for serving one model to many callers.

Callers ``await batcher.embed(texts)``. Texts already in the LRU cache are answered at once;
the others go on an asyncio queue. A single worker admits what is queued, waits up to
``max_wait_ms`` for more (or until ``max_batch_size`` texts), and encodes the waiting texts in
chunks, one ``encode`` call at a time on a dedicated thread (so the event loop stays free). A
text asked by several callers is encoded once; the vectors go to the cache and to every caller
waiting for them.

Chunks are fair: a chunk holds at most ``max_batch_size`` texts and about ``max_batch_tokens``
padded tokens (estimated from characters), every waiting job first gets a share of it in
arrival order (at most 1/``FAIR_SHARES`` of it each), then the oldest jobs fill the rest, and
jobs that arrive while a chunk encodes join the next one. A small request that arrives behind
a large one therefore waits about one chunk, not the whole large request. When an encode
fails, each job of the chunk is retried alone, so only the job whose text broke it fails.

The memory it holds is bounded: the cache by entries, the queue by pending texts (a caller
that would exceed it gets :class:`Overloaded` at once instead of waiting). Work that encodes
through the batcher from elsewhere (the server's validate requests) counts towards the same
limit with :meth:`MicroBatcher.admit` and :meth:`MicroBatcher.release`.
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

from catembed.backends import Encoder, TextClipper
from catembed.errors import CatembedError, ConfigError, first_line

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 256
# 32 texts of 256 tokens (about 3 s on two cores); 256 category strings take a tenth of it.
DEFAULT_MAX_BATCH_TOKENS = 8_192
DEFAULT_MAX_WAIT_MS = 2.0
DEFAULT_CACHE_SIZE = 20_000
DEFAULT_MAX_PENDING_TEXTS = 8_192
CHARS_PER_TOKEN_ESTIMATE = 4
FAIR_SHARES = 8  # each waiting job first gets up to 1/8 of a chunk, then the oldest fill it


class Overloaded(CatembedError):
    """Too many texts are waiting to be encoded; the caller should retry later."""


@dataclass(frozen=True)
class BatchingConfig:
    """How the worker groups texts and how much it may hold in memory."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE  # texts per encode call
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS  # padded tokens per encode call (estimate)
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS  # how long a batch waits for company
    cache_size: int = DEFAULT_CACHE_SIZE  # cached embeddings (entries); 0 disables the cache
    max_pending_texts: int = DEFAULT_MAX_PENDING_TEXTS  # queued texts before Overloaded

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max batch size must be at least 1, got {self.max_batch_size}")
        if self.max_batch_tokens < 1:
            raise ConfigError(f"max batch tokens must be at least 1, got {self.max_batch_tokens}")
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

    Uses the encoder's tokenizer (truncated to its ``max_seq_length``; a long text is cut
    first, as the encoder cuts it) when it has one, else estimates one token per four
    characters.
    """
    tokenizer = getattr(encoder, "tokenizer", None)
    max_length = getattr(encoder, "max_seq_length", None)
    if callable(tokenizer):
        clipper = getattr(encoder, "clipper", None)
        if not isinstance(clipper, TextClipper):
            clipper = TextClipper(tokenizer, max_length)

        def count(texts: list[str]) -> list[int]:
            if not texts:
                return []
            ids = tokenizer(
                clipper(texts), truncation=max_length is not None, max_length=max_length
            )
            return [len(row) for row in ids["input_ids"]]

        return count, "tokenizer"

    def estimate(texts: list[str]) -> list[int]:
        return [max(1, math.ceil(len(t) / CHARS_PER_TOKEN_ESTIMATE)) for t in texts]

    return estimate, "estimate"


@dataclass(eq=False)
class _Job:
    texts: list[str]  # distinct texts not in the cache when the job was queued
    future: asyncio.Future[dict[str, Embedded]]
    counted: int  # of pending_texts (0: its caller's admit() counted them)
    found: dict[str, Embedded] = field(default_factory=dict)
    cursor: int = 0  # every text before it is found or in the chunk being built

    def next_text(self, taken: dict[str, None]) -> str | None:
        """The job's first text that is neither found nor already in the chunk."""
        while self.cursor < len(self.texts):
            text = self.texts[self.cursor]
            if text not in self.found and text not in taken:
                return text
            self.cursor += 1
        return None

    @property
    def waiting(self) -> int:
        return len(self.texts) - len(self.found)


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
        self.pending_texts = 0  # queued texts and admitted ones (admit), against the limit
        self.admitted_texts = 0  # of them, those counted by admit()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._active: list[_Job] = []  # admitted jobs, oldest first
        self._waiters: dict[str, list[_Job]] = {}  # text -> admitted jobs waiting for it
        self._max_tokens = getattr(encoder, "max_seq_length", None)
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

    def _check_room(self, count: int) -> None:
        if self.pending_texts + count > self.config.max_pending_texts:
            self.stats.overloaded += 1
            raise Overloaded(
                f"server busy: {self.pending_texts} texts waiting to be encoded; retry later"
            )

    def admit(self, count: int) -> None:
        """Count ``count`` texts of work that encodes through the batcher from elsewhere (with
        ``embed(..., admitted=True)``) towards ``max_pending_texts`` until :meth:`release`;
        :class:`Overloaded` at once, counting nothing, when they would pass it. Call on the
        event loop's thread."""
        if count:
            self._check_room(count)
        self.pending_texts += count
        self.admitted_texts += count

    def release(self, count: int) -> None:
        """Stop counting ``count`` texts counted by :meth:`admit`."""
        self.pending_texts -= count
        self.admitted_texts -= count

    async def embed(self, texts: Sequence[str], *, admitted: bool = False) -> list[Embedded]:
        """Return the embedding of every text, in order, batched with other callers' texts.

        ``admitted``: the caller's texts are already counted (:meth:`admit`); they are neither
        counted again nor refused.
        """
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
            counted = 0 if admitted else len(missing)
            if counted:
                self._check_room(counted)
            job = _Job(missing, asyncio.get_running_loop().create_future(), counted)
            self.pending_texts += counted
            self._queue.put_nowait(job)
            try:
                found.update(await job.future)
            finally:
                if not job.future.done():  # the caller went away: the worker drops the job
                    job.future.cancel()
        return [found[text] for text in texts]

    async def _run(self) -> None:
        try:
            while True:
                if not self._active:
                    self._admit(await self._queue.get())
                await self._gather()
                for job in [job for job in self._active if job.future.done()]:
                    self._finish(job)  # its caller went away
                if not self._active:
                    continue
                try:
                    await self._encode_chunk(self._next_chunk())
                except Exception as error:  # never let a bug here stop the worker
                    logger.exception("the batcher failed")
                    for job in list(self._active):
                        self._finish(job, error)
        finally:
            stopped = CatembedError("the encoder stopped before this request was answered")
            for job in list(self._active):
                self._finish(job, stopped)
            while not self._queue.empty():
                job = self._queue.get_nowait()
                self._active.append(job)
                self._finish(job, stopped)

    async def _gather(self) -> None:
        """Admit every queued job; wait up to ``max_wait_ms`` for more while the waiting
        texts would not fill a chunk."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.max_wait_ms / 1000
        waiting = sum(job.waiting for job in self._active)
        while True:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if waiting >= self.config.max_batch_size or remaining <= 0:
                    return
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    return
            waiting += self._admit(job)

    def _admit(self, job: _Job) -> int:
        """Make ``job`` active (texts encoded since it was queued come from the cache) and
        return how many of its texts still wait."""
        self._active.append(job)
        for text in job.texts:
            cached = self.cache.get(text)
            if cached is not None:
                job.found[text] = cached
            else:
                self._waiters.setdefault(text, []).append(job)
        if not job.waiting:
            self._finish(job)
        return job.waiting

    def _finish(self, job: _Job, error: BaseException | None = None) -> None:
        """Answer ``job`` (unless its caller went away) and forget it."""
        self._active.remove(job)
        self.pending_texts -= job.counted
        for text in job.texts:
            waiters = self._waiters.get(text)
            if waiters is not None and job in waiters:
                waiters.remove(job)
                if not waiters:
                    del self._waiters[text]
        if job.future.done():
            return
        if error is None:
            job.future.set_result(job.found)
        else:
            job.future.set_exception(error)

    def _estimate_tokens(self, text: str) -> int:
        tokens = math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE) + 2  # [CLS] and [SEP]
        return min(tokens, self._max_tokens) if self._max_tokens else tokens

    def _next_chunk(self) -> list[str]:
        """The texts of the next encode call: first a fair share for every job in arrival
        order (1/``FAIR_SHARES`` of the texts and of the tokens), then the oldest jobs' texts,
        within ``max_batch_size`` texts and about ``max_batch_tokens`` padded tokens."""
        size, budget = self.config.max_batch_size, self.config.max_batch_tokens
        share = max(1, size // FAIR_SHARES)
        chunk: dict[str, None] = {}
        longest = 0
        for limit, token_limit in ((share, budget // FAIR_SHARES), (size, budget)):
            for job in self._active:
                taken = used = 0
                while taken < limit and len(chunk) < size:
                    text = job.next_text(chunk)
                    if text is None:
                        break
                    estimate = self._estimate_tokens(text)
                    tokens = max(longest, estimate)
                    if chunk and (len(chunk) + 1) * tokens > budget:
                        break  # too long for this chunk; shorter texts of other jobs may fit
                    if taken and used + estimate > token_limit:
                        break  # its share of the chunk's tokens
                    chunk[text] = None
                    longest = tokens
                    taken += 1
                    used += estimate
                if len(chunk) >= size:
                    return list(chunk)
        return list(chunk)

    async def _encode_chunk(self, chunk: list[str]) -> None:
        """Encode ``chunk`` and hand its vectors to every job waiting for them. When the
        encode fails and several jobs wait for its texts, each job's part is retried alone,
        so that only the jobs whose own texts fail get the error."""
        try:
            results = await self._encode_counted(chunk)
        except Exception as error:
            in_chunk = set(chunk)
            jobs = [job for job in self._active if any(t in in_chunk for t in job.texts)]
            logger.exception("encoding %d texts of %d request(s) failed", len(chunk), len(jobs))
            if len(jobs) == 1:
                self._finish(jobs[0], error)
                return
            results = {}
            for job in jobs:
                part = [t for t in job.texts if t in in_chunk and t not in results]
                try:
                    results.update(await self._encode_counted(part) if part else {})
                except Exception as alone:
                    logger.warning("a request failed alone too: %s", first_line(alone))
                    self._finish(job, alone)
        done: list[_Job] = []
        for text, item in results.items():
            for job in self._waiters.pop(text, []):
                job.found[text] = item
                if not job.waiting:
                    done.append(job)
        for job in done:
            self._finish(job)

    async def _encode_counted(self, texts: list[str]) -> dict[str, Embedded]:
        began = time.perf_counter()
        vectors, tokens = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._encode, texts
        )
        self.stats.encode_seconds += time.perf_counter() - began
        self.stats.batches += 1
        self.stats.encoded_texts += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        results: dict[str, Embedded] = {}
        for text, vector, count in zip(texts, vectors, tokens, strict=True):
            results[text] = Embedded(vector, count)
            self.cache.put(text, results[text])
        return results

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
    ``admitted``: every caller's work is counted with :meth:`MicroBatcher.admit` before it
    calls, so its texts are not counted again (nor refused) when they queue.
    """

    def __init__(self, batcher: MicroBatcher, *, admitted: bool = False) -> None:
        self._batcher = batcher
        self._admitted = admitted

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
        embedding = self._batcher.embed(texts, admitted=self._admitted)
        items = asyncio.run_coroutine_threadsafe(embedding, loop).result()
        vectors = np.stack([item.vector for item in items]) if items else np.zeros((0, 0))
        return vectors[0] if single else vectors


class ExclusiveEncoder:
    """Another model's ``encode`` (a trained validator's base model) run on the batcher's
    encode thread: one encode at a time with the served model's, never two at once competing
    for the cores. Other attributes come from that model."""

    def __init__(self, encoder: Any, batcher: MicroBatcher) -> None:
        self._encoder = encoder
        self._batcher = batcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return self._batcher.run_exclusive(self._encoder.encode, inputs, *args, **kwargs)
