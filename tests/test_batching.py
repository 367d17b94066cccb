"""The micro-batcher in process, with the real base model."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from catembed.batching import (
    BatchedEncoder,
    BatchingConfig,
    ExclusiveEncoder,
    LRUCache,
    MicroBatcher,
    Overloaded,
    token_counter,
)
from catembed.errors import ConfigError


def direct(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, normalize_embeddings=True, convert_to_numpy=True))


def test_callers_waiting_together_share_one_encode_call(base_model: Any) -> None:
    requests = [[f"Sweaters {i}", f"Hoodies {i}", "Cardigan"] for i in range(10)]

    async def scenario() -> tuple[list[list[Any]], MicroBatcher]:
        batcher = MicroBatcher(base_model, BatchingConfig(max_wait_ms=50))
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.embed(texts) for texts in requests))
        finally:
            await batcher.stop()
        return results, batcher

    results, batcher = asyncio.run(scenario())
    assert batcher.stats.batches == 1
    assert batcher.stats.encoded_texts == 21  # 'Cardigan' once
    assert batcher.stats.largest_batch == 21
    for texts, items in zip(requests, results, strict=True):
        np.testing.assert_allclose(
            np.stack([item.vector for item in items]), direct(base_model, texts), atol=1e-5
        )
        assert [item.tokens for item in items] == token_counter(base_model)[0](texts)


def test_cache_answers_repeats_and_stays_bounded(base_model: Any) -> None:
    async def scenario() -> MicroBatcher:
        batcher = MicroBatcher(base_model, BatchingConfig(cache_size=3, max_wait_ms=0))
        await batcher.start()
        try:
            await batcher.embed(["a", "b", "a"])
            await batcher.embed(["a", "b"])
            await batcher.embed(["c", "d", "e"])
        finally:
            await batcher.stop()
        return batcher

    batcher = asyncio.run(scenario())
    assert batcher.stats.cache_hits == 2
    assert batcher.stats.encoded_texts == 5
    assert len(batcher.cache) == 3


def test_a_full_queue_refuses_at_once_and_a_cancelled_caller_harms_no_one(
    base_model: Any,
) -> None:
    async def scenario() -> list[Any]:
        batcher = MicroBatcher(base_model, BatchingConfig(max_pending_texts=4, max_wait_ms=20))
        await batcher.start()
        try:
            first = asyncio.ensure_future(batcher.embed(["w", "x", "y"]))
            await asyncio.sleep(0)
            with pytest.raises(Overloaded, match="3 texts waiting"):
                await batcher.embed(["p", "q"])
            first.cancel()
            for _ in range(600):  # the batch it joined finishes without it
                if batcher.pending_texts == 0:
                    break
                await asyncio.sleep(0.05)
            assert batcher.pending_texts == 0
            return await batcher.embed(["p", "q"])  # the worker is still alive
        finally:
            await batcher.stop()

    items = asyncio.run(scenario())
    np.testing.assert_allclose(
        np.stack([item.vector for item in items]), direct(base_model, ["p", "q"]), atol=1e-5
    )


def test_admitted_work_counts_towards_the_limit_once(base_model: Any) -> None:
    """admit() counts work that encodes from elsewhere (a validate request) against
    max_pending_texts, or refuses it counting nothing; its own encodes are not counted again
    nor refused, and release() gives the room back."""

    async def scenario() -> np.ndarray:
        batcher = MicroBatcher(base_model, BatchingConfig(max_pending_texts=4))
        await batcher.start()
        try:
            batcher.admit(3)
            assert (batcher.pending_texts, batcher.admitted_texts) == (3, 3)
            with pytest.raises(Overloaded, match="3 texts waiting"):
                await batcher.embed(["p", "q"])
            with pytest.raises(Overloaded, match="3 texts waiting"):
                batcher.admit(2)
            assert (batcher.pending_texts, batcher.admitted_texts) == (3, 3)
            wrapper = BatchedEncoder(batcher, admitted=True)
            kwargs = {"normalize_embeddings": True, "convert_to_numpy": True}
            vectors = await asyncio.to_thread(wrapper.encode, ["x", "y", "z"], **kwargs)
            assert (batcher.pending_texts, batcher.admitted_texts) == (3, 3)
            batcher.release(3)
            assert (batcher.pending_texts, batcher.admitted_texts) == (0, 0)
            await batcher.embed(["p", "q", "r", "s"])  # the room is back
            return np.asarray(vectors)
        finally:
            await batcher.stop()

    vectors = asyncio.run(scenario())
    np.testing.assert_allclose(vectors, direct(base_model, ["x", "y", "z"]), atol=1e-5)


def test_batched_encoder_serves_blocking_callers_through_the_batcher(base_model: Any) -> None:
    async def scenario() -> tuple[np.ndarray, np.ndarray, np.ndarray, MicroBatcher]:
        batcher = MicroBatcher(base_model)
        await batcher.start()
        wrapper = BatchedEncoder(batcher)
        kwargs = {"batch_size": 8, "normalize_embeddings": True, "convert_to_numpy": True}
        try:
            many = await asyncio.to_thread(wrapper.encode, ["Sweaters", "Hoodies"], **kwargs)
            one = await asyncio.to_thread(wrapper.encode, "Sweaters", **kwargs)
            raw = await asyncio.to_thread(wrapper.encode, ["Sweaters"], batch_size=8)
        finally:
            await batcher.stop()
        return many, one, raw, batcher

    many, one, raw, batcher = asyncio.run(scenario())
    np.testing.assert_allclose(many, direct(base_model, ["Sweaters", "Hoodies"]), atol=1e-5)
    np.testing.assert_allclose(one, many[0], atol=1e-6)
    assert batcher.stats.cache_hits == 1 and batcher.stats.encoded_texts == 2
    assert raw.shape == (1, 384)  # not normalised on request: served by the model directly


def test_a_text_that_breaks_the_encoder_fails_only_its_own_caller(base_model: Any) -> None:
    """A lone surrogate makes the tokenizer raise: the batch it joined is retried job by job,
    so the callers sharing that batch still get their vectors."""
    requests = [["Sweaters", "Hoodies"], ["Cardigan", "\ud800"], ["Hoodies", "Wool Socks"]]

    async def scenario() -> tuple[list[Any], list[Any], MicroBatcher]:
        batcher = MicroBatcher(base_model, BatchingConfig(max_wait_ms=200))
        await batcher.start()
        try:
            results = await asyncio.gather(
                *(batcher.embed(texts) for texts in requests), return_exceptions=True
            )
            assert batcher.pending_texts == 0
            after = await batcher.embed(["Cardigan", "Scarves"])  # the worker is still alive
        finally:
            await batcher.stop()
        return results, after, batcher

    results, after, batcher = asyncio.run(scenario())
    assert isinstance(results[1], TypeError)
    for index in (0, 2):
        vectors = np.stack([item.vector for item in results[index]])
        np.testing.assert_allclose(vectors, direct(base_model, requests[index]), atol=1e-5)
    np.testing.assert_allclose(
        np.stack([item.vector for item in after]),
        direct(base_model, ["Cardigan", "Scarves"]),
        atol=1e-5,
    )
    assert batcher.stats.batches >= 3  # the failed batch, then each request alone


@pytest.mark.parametrize(
    ("large", "config", "chunk"),
    [
        ([f"Knitted winter item number {i}" for i in range(160)], {"max_batch_size": 8}, 8),
        ([f"{i} " + "a knitted woollen garment " * 60 for i in range(24)], {"max_batch_tokens": 1100}, 4),
    ],
    ids=["many short texts", "long texts"],
)  # fmt: skip
def test_a_small_request_does_not_wait_for_a_large_one_queued_before_it(
    base_model: Any, large: list[str], config: dict[str, int], chunk: int
) -> None:
    """Each chunk first gives every waiting request a share (of texts, and of tokens for
    long texts), so the small one goes in the chunk after it arrives."""
    finished: list[str] = []

    async def scenario() -> tuple[list[Any], list[Any], MicroBatcher]:
        batcher = MicroBatcher(base_model, BatchingConfig(max_wait_ms=0, **config))
        await batcher.start()
        try:
            big = asyncio.ensure_future(batcher.embed(large))
            big.add_done_callback(lambda _: finished.append("large"))
            while batcher.stats.batches == 0:  # the large request is being encoded
                await asyncio.sleep(0.005)
            assert not big.done()
            small = asyncio.ensure_future(batcher.embed(["Hoodies"]))
            small.add_done_callback(lambda _: finished.append("small"))
            return await big, await small, batcher
        finally:
            await batcher.stop()

    big, small, batcher = asyncio.run(scenario())
    assert finished == ["small", "large"]
    np.testing.assert_allclose(small[0].vector, direct(base_model, ["Hoodies"])[0], atol=1e-5)
    np.testing.assert_allclose(
        np.stack([item.vector for item in big]), direct(base_model, large), atol=1e-5
    )
    assert batcher.stats.largest_batch == chunk  # 4 texts of 256 tokens fit in 1,100
    assert batcher.stats.encoded_texts == len(large) + 1


def test_long_texts_are_encoded_in_chunks_of_bounded_tokens(base_model: Any) -> None:
    """max_batch_tokens bounds a chunk's padded tokens (estimated at 4 characters a token,
    at most the model's 256): four texts of 256 tokens fit in 1,100, short ones by the dozen."""
    long = [f"{i} " + "a woollen winter garment, knitted by hand " * 30 for i in range(10)]
    short = [f"Socks {i}" for i in range(40)]

    async def scenario() -> tuple[list[Any], MicroBatcher]:
        config = BatchingConfig(max_batch_tokens=1_100, max_wait_ms=0)
        batcher = MicroBatcher(base_model, config)
        await batcher.start()
        try:
            items = await batcher.embed(long)
            sizes = [batcher.stats.largest_batch, batcher.stats.batches]
            await batcher.embed(short)
        finally:
            await batcher.stop()
        return [items, sizes], batcher

    (items, sizes), batcher = asyncio.run(scenario())
    assert sizes == [4, 3]  # 4 + 4 + 2
    assert batcher.stats.largest_batch == 40
    np.testing.assert_allclose(
        np.stack([item.vector for item in items]), direct(base_model, long), atol=1e-5
    )


def test_lru_cache_forgets_the_least_recently_used() -> None:
    cache = LRUCache(2)
    for key in ("a", "b"):
        cache.put(key, key)  # type: ignore[arg-type]
    assert cache.get("a") == "a"
    cache.put("c", "c")  # type: ignore[arg-type]
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("a", None, "c")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_batch_size", 0, "max batch size must be at least 1"),
        ("max_batch_tokens", 0, "max batch tokens must be at least 1"),
        ("max_wait_ms", -1, "max wait must be in"),
        ("cache_size", -1, "cache size must not be negative"),
        ("max_pending_texts", 0, "max pending texts must be at least 1"),
    ],
)
def test_batching_config_rejects_bad_values(field: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BatchingConfig(**{field: value})


def test_another_models_encodes_run_on_the_encode_thread_one_at_a_time(base_model: Any) -> None:
    # A trained validator judges with its base model: its encodes ran on the request's pool
    # thread, beside the served model's, both using every core.
    threads: list[str] = []

    class Recorded:  # the real model, noting the thread each encode runs on
        def encode(self, *args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return base_model.encode(*args, **kwargs)

    async def scenario() -> np.ndarray:
        batcher = MicroBatcher(base_model)
        await batcher.start()
        try:
            other = ExclusiveEncoder(Recorded(), batcher)
            return await asyncio.to_thread(other.encode, ["Sweaters"], normalize_embeddings=True)
        finally:
            await batcher.stop()

    vectors = asyncio.run(scenario())
    np.testing.assert_allclose(vectors, direct(base_model, ["Sweaters"]), atol=1e-5)
    assert len(threads) == 1 and threads[0].startswith("catembed-encode")
