"""The HTTP API's contract: its limits, and its request and response bodies (pydantic,
``extra="forbid"`` on requests).

Requests are validated strictly: a number where text belongs, an unknown field or a body that
is not JSON is a 422 with an OpenAI-style error body, never a coercion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catembed.errors import ConfigError
from catembed.verdicts import MAX_ROWS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_INPUTS = 2048
DEFAULT_MAX_INPUT_CHARS = 2048
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_SIMILARITY_CELLS = 512 * 512
DEFAULT_GRACEFUL_SHUTDOWN_S = 30.0


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask for; larger requests get a JSON error, never a crash."""

    max_inputs: int = DEFAULT_MAX_INPUTS  # texts per request (each list of /v1/similarity)
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS  # characters per text
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # request body, checked while it streams: 413
    max_similarity_cells: int = DEFAULT_MAX_SIMILARITY_CELLS  # len(a) * len(b)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be at least 1, got {value}")


TextList = Annotated[list[str], Field(min_length=1)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EmbeddingsRequest(_Request):
    """``POST /v1/embeddings``, as in OpenAI's API (text inputs only)."""

    input: str | TextList = Field(description="A text or a non-empty list of texts.")
    model: str | None = Field(None, description="Served model id; omitted means the served one.")
    encoding_format: Literal["float", "base64"] | None = Field(
        "float",
        description="base64: little-endian float32 bytes, as OpenAI sends them; null: float.",
    )
    dimensions: int | None = Field(
        None, ge=1, description="Keep the first N dimensions and re-normalise to unit length."
    )
    user: str | None = Field(None, description="Accepted for compatibility and ignored.")


class ValidateRequest(_Request):
    """``POST /v1/validate``: the values of a categorical column (null: a missing cell)."""

    values: Annotated[list[str | None], Field(min_length=1)]
    rows: list[Annotated[int, Field(ge=0, le=MAX_ROWS)]] | None = Field(
        None, description="Rows holding each value, when ``values`` are a column's distinct values."
    )
    column_evidence: bool = Field(
        True, description="false: judge each value alone, whatever its rows."
    )
    model: str | None = None

    @model_validator(mode="after")
    def _one_count_per_value(self) -> ValidateRequest:
        if self.rows is not None and len(self.rows) != len(self.values):
            raise ValueError(f"rows: {len(self.rows)} counts for {len(self.values)} values")
        return self


class SimilarityRequest(_Request):
    """``POST /v1/similarity``: cosine similarity of every ``a`` with every ``b``."""

    a: TextList
    b: TextList | None = Field(None, description="Omitted: compare a with itself.")
    model: str | None = None


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str
    index: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ValueResult(BaseModel):
    """The validator's report on one value, as ``catembed validate`` prints it."""

    index: int
    value: str | None
    verdict: Literal["valid", "out_of_domain", "malformed", "missing"]
    score: float = Field(description="In [0, 1]; anomalies score at least 0.5.")
    nearest: str = Field(description="The closest reference value ('' for missing values).")
    suggestion: str = Field(description="A confident repair, else ''.")
    reason: str = ""


class ValidateResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    results: list[ValueResult]
    usage: Usage


class SimilarityResponse(BaseModel):
    object: Literal["similarity"] = "similarity"
    model: str
    matrix: list[list[float]] = Field(description="matrix[i][j] = cosine(a[i], b[j]).")
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "catembed"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    backend: str
    dimension: int
    validator: bool = Field(description="Whether /v1/validate is available for this model.")
    token_counting: str = Field(description="tokenizer (exact) or estimate (4 chars a token).")
    in_flight: int = Field(description="HTTP requests being answered now.")
    limits: dict[str, Any]
    batching: dict[str, Any]
    stats: dict[str, Any] = Field(description="Counters since start: batches, cache hits, ...")


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
