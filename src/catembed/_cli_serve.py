"""`catembed serve`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from catembed._cli_options import F, backend_option, model_option


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
        func = click.option(name, type=kind, default=default, show_default=True, help=text)(func)
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
    from catembed.schemas import ServerLimits

    limits = ServerLimits(**{k: params[k] for k in ServerLimits.__dataclass_fields__})
    batching = BatchingConfig(**{k: params[k] for k in BatchingConfig.__dataclass_fields__})
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
