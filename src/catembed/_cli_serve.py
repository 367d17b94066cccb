"""`catembed serve`."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import click

from catembed._cli_options import F, backend_option, model_option


def _seconds(_ctx: click.Context, _param: click.Parameter, seconds: float) -> float:
    if not 0 <= seconds < math.inf:  # NaN too
        raise click.BadParameter(f"must be a number of seconds, at least 0, got {seconds}")
    return seconds


def serve_options(func: F) -> F:
    """Address, limits and batching knobs of `serve`; defaults from catembed.schemas/batching."""
    from catembed import batching as b
    from catembed import schemas as s

    options: list[tuple[str, Any, Any, str]] = [
        ("--host", str, s.DEFAULT_HOST, "Address to listen on."),
        ("--port", click.IntRange(0, 65535), s.DEFAULT_PORT, "Port to listen on (0: any free)."),
        ("--max-inputs", int, s.DEFAULT_MAX_INPUTS, "Texts per request."),
        ("--max-input-chars", int, s.DEFAULT_MAX_INPUT_CHARS, "Characters per text."),
        ("--max-body-bytes", int, s.DEFAULT_MAX_BODY_BYTES, "Request body size (else 413)."),
        ("--max-similarity-cells", int, s.DEFAULT_MAX_SIMILARITY_CELLS, "Cells of a matrix."),
        ("--max-batch-size", int, b.DEFAULT_MAX_BATCH_SIZE, "Texts per encode call."),
        ("--max-batch-tokens", int, b.DEFAULT_MAX_BATCH_TOKENS, "Padded tokens per encode call."),
        ("--max-wait-ms", float, b.DEFAULT_MAX_WAIT_MS, "How long a batch waits for more."),
        ("--cache-size", int, b.DEFAULT_CACHE_SIZE, "Cached embeddings (0: no cache)."),
        ("--max-pending-texts", int, b.DEFAULT_MAX_PENDING_TEXTS, "Queued texts (else 503)."),
        ("--graceful-timeout", float, s.DEFAULT_GRACEFUL_SHUTDOWN_S, "Seconds to finish requests."),
    ]
    for name, kind, default, text in reversed(options):
        # The others' ranges are checked by ServerLimits and BatchingConfig, in serve.
        callback = _seconds if name == "--graceful-timeout" else None
        func = click.option(
            name, type=kind, default=default, show_default=True, help=text, callback=callback
        )(func)
    return func


@click.command()
@model_option
@backend_option
@click.option("--model-name", default=None, help="Model id clients send (default: folder name).")
@serve_options
def serve(
    model_dir: Path,
    backend: str,
    host: str,
    port: int,
    model_name: str | None,
    graceful_timeout: float,
    **params: Any,
) -> None:
    """Serve a model over HTTP: OpenAI-compatible /v1/embeddings, /v1/validate,
    /v1/similarity, /v1/models, /health, and API docs at /docs. Stops cleanly on SIGTERM."""
    try:
        from catembed.server import serve as run_server
    except ImportError as error:
        raise click.ClickException(str(error)) from None
    from catembed.batching import BatchingConfig
    from catembed.config import build, from_options
    from catembed.schemas import ServerLimits

    # A value out of range is a usage error naming its option (exit 2), as --port's.
    limits = build(ServerLimits, from_options(_fields(ServerLimits, params)))
    batching = build(BatchingConfig, from_options(_fields(BatchingConfig, params)))
    if batching.max_pending_texts < 2 * limits.max_inputs:  # else refused once the model loads
        raise click.UsageError(
            f"--max-pending-texts ({batching.max_pending_texts}) must be at least twice "
            f"--max-inputs ({limits.max_inputs}), so that any valid request fits an idle server"
        )
    run_server(
        model_dir,
        host=host,
        port=port,
        backend=backend,
        limits=limits,
        batching=batching,
        model_name=model_name,
        graceful_shutdown_s=graceful_timeout,
        log_level="warning" if logging.getLogger("catembed").level >= logging.WARNING else "info",
    )


def _fields(cls: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in cls.__dataclass_fields__}
