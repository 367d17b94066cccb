"""Serving a model over HTTP: OpenAI-compatible embeddings, validation and similarity.

``catembed serve --model DIR`` runs :func:`create_app` under uvicorn. Concurrent requests are
encoded together by a :class:`~catembed.batching.MicroBatcher` with an LRU cache of embeddings;
limits on inputs, characters, body bytes and queued texts keep memory bounded, and every error
is an OpenAI-style JSON body ``{"error": {"message", "type", "code", "param"}}``.

Needs the ``serve`` extra: ``pip install 'catembed[serve]'``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        f"serving needs FastAPI and uvicorn ({error.name} is missing): "
        "pip install 'catembed[serve]'"
    ) from error

import numpy as np

from catembed._http import ApiError, InFlight, RequestGuard, add_error_handlers, bind_sockets
from catembed.backends import (
    DEFAULT_BACKEND,
    Backend,
    Encoder,
    load_encoder,
    resolve_backend,
    unreadable_at,
)
from catembed.batching import (
    BatchedEncoder,
    BatchingConfig,
    Embedded,
    ExclusiveEncoder,
    MicroBatcher,
    Overloaded,
)
from catembed.errors import CatembedError, ConfigError, first_line
from catembed.schemas import (
    DEFAULT_GRACEFUL_SHUTDOWN_S,
    DEFAULT_HOST,
    DEFAULT_PORT,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorBody,
    Health,
    ModelCard,
    ModelList,
    ServerLimits,
    SimilarityRequest,
    SimilarityResponse,
    ValidateRequest,
    ValidateResponse,
)

logger = logging.getLogger(__name__)

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 413, 422, 503)
}


@dataclass(frozen=True)
class ValidatorHandle:
    """The model's validator, or why there is none (then /v1/validate answers 503)."""

    validator: Any | None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.validator is not None

    def validate(
        self,
        values: list[str | None],
        rows: list[int] | None = None,
        column_evidence: bool = True,
    ) -> list[dict[str, Any]]:
        assert self.validator is not None
        reports = self.validator.validate(values, rows=rows, column_evidence=column_evidence)
        return [report.to_dict() for report in reports]


def load_validator(folder: Path, backend: str, batcher: MicroBatcher) -> ValidatorHandle:
    """Load the validator stored with the model, encoding through ``batcher``: the served
    model's texts join its batches, and the domain classifier's own model (a trained
    validator's base model) encodes on its thread, one encode at a time."""
    try:
        from catembed.validation import Validator  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return ValidatorHandle(None, "validation is not available in this version of catembed")
    try:
        # Every validate request is counted (MicroBatcher.admit) before it encodes.
        encoder = BatchedEncoder(batcher, admitted=True)
        validator = Validator.load(folder, backend=backend, encoder=encoder)
        if validator.domain is not None and validator.domain.model:  # not the served model
            validator.domain.encoder = ExclusiveEncoder(validator.domain.encoder, batcher)
        return ValidatorHandle(validator)
    except CatembedError as error:
        logger.warning("no validator: %s", error)
        return ValidatorHandle(None, f"this model has no validator: {error}")


@dataclass
class ServerState:
    """What the routes share: the model, its batcher and validator (and the threads it judges
    on), names and limits."""

    encoder: Encoder
    batcher: MicroBatcher
    validator: ValidatorHandle
    validate_pool: ThreadPoolExecutor
    model_name: str
    created: int
    backend: str
    dimension: int
    limits: ServerLimits
    in_flight: InFlight


def create_app(
    model_dir: str | Path,
    backend: Backend | str = DEFAULT_BACKEND,
    limits: ServerLimits | None = None,
    batching: BatchingConfig | None = None,
    model_name: str | None = None,
) -> FastAPI:
    """Load the model in ``model_dir`` and return the FastAPI application serving it.

    Raises :class:`~catembed.errors.ModelError` or :class:`~catembed.errors.ConfigError` at
    once for a folder or backend that cannot be used.
    """
    limits = limits or ServerLimits()
    batching = batching or BatchingConfig()
    if batching.max_pending_texts < 2 * limits.max_inputs:
        raise ConfigError(
            f"max pending texts ({batching.max_pending_texts}) must be at least twice max inputs "
            f"({limits.max_inputs}), so that any valid request fits an idle server"
        )
    folder = Path(model_dir)
    encoder = load_encoder(folder, backend)
    probe = np.asarray(encoder.encode(["catembed"], normalize_embeddings=True))  # warm-up
    batcher = MicroBatcher(encoder, batching)
    backend = resolve_backend(backend, folder).value
    state = ServerState(
        encoder=encoder,
        batcher=batcher,
        validator=load_validator(folder, backend, batcher),
        # As many threads as asyncio's default pool, which judged before.
        validate_pool=ThreadPoolExecutor(
            max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="catembed-validate"
        ),
        model_name=model_name or folder.resolve().name,
        created=int((folder / "modules.json").stat().st_mtime),
        backend=backend,
        dimension=int(probe.shape[-1]),
        limits=limits,
        in_flight=InFlight(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        logger.info(
            "serving %s (%s, %d dimensions)", state.model_name, state.backend, state.dimension
        )
        try:
            yield
        finally:
            # Validations still waiting for a thread are dropped; running ones finish on theirs.
            state.validate_pool.shutdown(wait=False, cancel_futures=True)
            await batcher.stop()

    app = FastAPI(
        title="catembed",
        summary="Embeddings (OpenAI-compatible), validation and similarity of category values.",
        lifespan=lifespan,
        responses=_ERROR_RESPONSES,
    )
    app.state.catembed = state
    app.add_middleware(
        RequestGuard, max_body_bytes=limits.max_body_bytes, in_flight=state.in_flight
    )
    add_error_handlers(app)
    _add_routes(app, state)
    return app


def _json(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


def _usage(items: list[Embedded]) -> dict[str, int]:
    tokens = sum(item.tokens for item in items)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


def _add_routes(app: FastAPI, state: ServerState) -> None:
    limits = state.limits

    def check_model(model: str | None) -> None:
        if model is not None and model != state.model_name:
            raise ApiError(
                404,
                f"model {model!r} is not served here; this server serves {state.model_name!r}",
                "model_not_found",
                param="model",
            )

    def check_texts(
        texts: list[str] | list[str | None], param: str, *, judge_unreadable: bool = False
    ) -> None:
        """Limits on count and length; a text with a lone surrogate (JSON can escape one,
        no encoder can read it) is a 422, or left to the validator with ``judge_unreadable``
        (which calls it malformed)."""
        if len(texts) > limits.max_inputs:
            raise ApiError(
                400,
                f"{param} has {len(texts)} texts; at most {limits.max_inputs} per request",
                "too_many_inputs",
                param=param,
            )
        for index, text in enumerate(texts):
            if text is not None and len(text) > limits.max_input_chars:
                raise ApiError(
                    400,
                    f"{param}[{index}] has {len(text)} characters; "
                    f"at most {limits.max_input_chars} per text",
                    "input_too_long",
                    param=param,
                )
            if text is not None and not judge_unreadable:
                position = unreadable_at(text)
                if position is not None:
                    raise ApiError(
                        422,
                        f"{param}[{index}] is not valid Unicode text: it holds a lone surrogate "
                        f"({ascii(text[position])[1:-1]}) at character {position}",
                        "invalid_text",
                        param=param,
                    )

    async def embed(texts: list[str]) -> list[Embedded]:
        try:
            return await state.batcher.embed(texts)
        except Overloaded as error:
            raise ApiError(503, str(error), "server_overloaded") from None

    @app.api_route("/health", methods=["GET", "HEAD"], response_model=Health, tags=["server"])
    async def health() -> Health:
        """Liveness, the served model, limits and batching/cache counters."""
        return Health(
            model=state.model_name,
            backend=state.backend,
            dimension=state.dimension,
            validator=state.validator.available,
            token_counting=state.batcher.token_counting,
            in_flight=state.in_flight.count,
            limits=asdict(limits),
            batching=asdict(state.batcher.config),
            stats={
                **state.batcher.stats.to_dict(),
                "cache_size": len(state.batcher.cache),
                "pending_texts": state.batcher.pending_texts,
                "pending_validate_texts": state.batcher.admitted_texts,
            },
        )

    @app.get("/v1/models", response_model=ModelList, tags=["openai"])
    async def list_models() -> ModelList:
        """The served model, as OpenAI lists models."""
        return ModelList(data=[ModelCard(id=state.model_name, created=state.created)])

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, tags=["openai"])
    async def get_model(model_id: str) -> ModelCard:
        check_model(model_id)
        return ModelCard(id=state.model_name, created=state.created)

    @app.post("/v1/embeddings", response_model=EmbeddingsResponse, tags=["openai"])
    async def embeddings(body: EmbeddingsRequest) -> Response:
        """OpenAI's embeddings endpoint: unit-length vectors, as floats or base64 float32."""
        check_model(body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        check_texts(texts, "input")
        if body.dimensions is not None and body.dimensions > state.dimension:
            raise ApiError(
                400,
                f"dimensions {body.dimensions} is larger than the model's {state.dimension}",
                "invalid_dimensions",
                param="dimensions",
            )
        items = await embed(texts)
        matrix = np.stack([item.vector for item in items])
        if body.dimensions is not None and body.dimensions < state.dimension:
            matrix = matrix[:, : body.dimensions]
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = matrix / np.maximum(norms, 1e-12)
        if body.encoding_format == "base64":
            rows: list[Any] = [
                base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in matrix
            ]
        else:
            rows = matrix.astype(np.float32).tolist()
        data = [{"object": "embedding", "embedding": row, "index": i} for i, row in enumerate(rows)]
        return _json(
            {"object": "list", "data": data, "model": state.model_name, "usage": _usage(items)}
        )

    @app.post("/v1/similarity", response_model=SimilarityResponse, tags=["catembed"])
    async def similarity(body: SimilarityRequest) -> Response:
        """Cosine similarity of every text of ``a`` with every text of ``b``."""
        check_model(body.model)
        other = body.b if body.b is not None else body.a
        check_texts(body.a, "a")
        check_texts(other, "b")
        if len(body.a) * len(other) > limits.max_similarity_cells:
            raise ApiError(
                400,
                f"a {len(body.a)} x {len(other)} matrix is larger than the limit of "
                f"{limits.max_similarity_cells} cells",
                "matrix_too_large",
                param="b" if body.b is not None else "a",
            )
        items = await embed([*body.a, *other])
        vectors = np.stack([item.vector for item in items])
        # float32 rounding puts a text's cosine with itself just above 1, where acos fails
        matrix = np.clip(vectors[: len(body.a)] @ vectors[len(body.a) :].T, -1.0, 1.0)
        payload = {"object": "similarity", "model": state.model_name, "matrix": matrix.tolist()}
        sent = items if body.b is not None else items[: len(body.a)]  # a once, as it was sent
        return _json({**payload, "usage": _usage(sent)})

    @app.post("/v1/validate", response_model=ValidateResponse, tags=["catembed"])
    async def validate(body: ValidateRequest) -> Response:
        """The validator's verdict, score, nearest valid value and suggestion for each value."""
        check_model(body.model)
        check_texts(body.values, "values", judge_unreadable=True)
        if not state.validator.available:
            raise ApiError(503, state.validator.reason, "validator_unavailable")
        # The validator calls an unreadable value malformed, a blank one missing, without
        # encoding them: no tokens.
        texts = [v for v in body.values if v and v.strip() and unreadable_at(v) is None]
        batcher = state.batcher

        def run() -> tuple[list[dict[str, Any]], int]:
            # On a pool thread: the validator's own encoder goes through the batcher and cache
            # (a trained validator judges with its base model's); the tokenizer is only used
            # on the encode thread.
            reports = state.validator.validate(body.values, body.rows, body.column_evidence)
            return reports, sum(batcher.run_exclusive(batcher.count_tokens, texts))

        # Its distinct values, each judged (and maybe encoded) once, count towards
        # --max-pending-texts as an embeddings request's texts do, until its thread is done:
        # a request whose client went away still counts while its validation runs on.
        counted = len(dict.fromkeys(texts))
        try:
            batcher.admit(counted)
        except Overloaded as error:
            raise ApiError(503, str(error), "server_overloaded") from None
        loop = asyncio.get_running_loop()

        def release(_: Future[Any]) -> None:  # on its thread, or on cancel() before it ran
            with suppress(RuntimeError):  # the loop is closed: there is nothing left to count
                loop.call_soon_threadsafe(batcher.release, counted)

        work = state.validate_pool.submit(run)
        work.add_done_callback(release)
        try:
            # Cancelled (its client went away): a validation still waiting for a thread is
            # dropped, one already running finishes there.
            results, tokens = await asyncio.wrap_future(work)
        except CatembedError as error:
            raise ApiError(400, str(error), "validation_failed") from None
        payload = {
            "object": "list",
            "model": state.model_name,
            "results": [{"index": i, **report} for i, report in enumerate(results)],
        }
        return _json({**payload, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class _Server(uvicorn.Server):
    """Logs how many requests a SIGTERM or Ctrl-C lets finish."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._state = state

    def handle_exit(self, sig: int, frame: Any) -> None:
        if not self.should_exit:
            logger.info(
                "received %s: finishing %d request(s) in flight, then stopping",
                signal.Signals(sig).name,
                self._state.in_flight.count,
            )
        super().handle_exit(sig, frame)


def configure_threads() -> int:
    """One encode at a time using every core: torch threads = cores, no tokenizer threads."""
    import torch

    from catembed.backends import physical_cores

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    torch.set_num_threads(physical_cores())
    return torch.get_num_threads()


def serve(
    model_dir: str | Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    backend: Backend | str = DEFAULT_BACKEND,
    limits: ServerLimits | None = None,
    batching: BatchingConfig | None = None,
    model_name: str | None = None,
    graceful_shutdown_s: float = DEFAULT_GRACEFUL_SHUTDOWN_S,
    log_level: str = "info",
) -> None:
    """Serve ``model_dir`` until SIGTERM or Ctrl-C; requests in flight finish first (up to
    ``graceful_shutdown_s``), and the process then returns normally (exit status 0)."""
    if not 0 <= graceful_shutdown_s < math.inf:  # NaN too
        raise ConfigError(
            f"graceful timeout must be a number of seconds, at least 0, got {graceful_shutdown_s}"
        )
    sockets = bind_sockets(host, port)  # before the model loads: a busy port fails fast
    try:
        threads = configure_threads()
        app = create_app(model_dir, backend, limits, batching, model_name)
        logger.info("encoding with %d torch thread(s)", threads)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            # uvicorn types it int, but times it with asyncio, which takes any seconds; 0
            # must not read as None (no limit).
            timeout_graceful_shutdown=max(graceful_shutdown_s, 1e-3),  # type: ignore[arg-type]
        )
        server = _Server(config, app.state.catembed)
        for sock in sockets:
            try:  # uvicorn's own listen() would fail with a traceback, once its lifespan began
                sock.listen(config.backlog)
            except OSError as error:  # another server began listening while this one loaded
                reason = error.strerror or first_line(error)  # (both could bind: SO_REUSEADDR)
                raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None
        # uvicorn re-raises the stop signal after its graceful shutdown; a no-op handler turns
        # that into a normal return instead of a kill (or a KeyboardInterrupt).
        stop_signals = (signal.SIGTERM, signal.SIGINT)
        previous: dict[signal.Signals, Any] = {}
        for sig in stop_signals:
            previous[sig] = signal.signal(sig, lambda *_: None)
        for sock in sockets:
            address, bound_port = sock.getsockname()[:2]
            shown = f"[{address}]" if ":" in address else address
            logger.info("listening on http://%s:%d", shown, bound_port)
        try:
            server.run(sockets=sockets)
        except SystemExit as error:  # uvicorn exits with 3 when it cannot start
            raise CatembedError(
                f"could not start the server on {host}:{port} (uvicorn exited with {error.code})"
            ) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:
        raise CatembedError(f"could not start the server on {host}:{port}")
