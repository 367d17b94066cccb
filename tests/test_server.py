"""The HTTP server, for real: a uvicorn subprocess on a free loopback port, called with httpx
and with the official ``openai`` client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from click.testing import CliRunner

from catembed._http import bind_sockets
from catembed.backends import load_encoder
from catembed.cli import main
from catembed.models import DEFAULT_BASE_MODEL, resolve_base_model
from catembed.validation import Validator
from catembed.vocabulary import domain_values

pytestmark = pytest.mark.slow

MODEL_NAME = "apparel-test"
# Small limits so every error case is cheap to reach.
LIMITS = ["--max-inputs", "64", "--max-input-chars", "200", "--max-body-bytes", "20000"]
LIMITS += ["--max-similarity-cells", "400", "--max-wait-ms", "5"]
JSON = {"content-type": "application/json"}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path, log: Path, *args: str) -> Server:
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "catembed.cli", "serve", "--model", str(folder)]
    command += ["--port", str(port), *args]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"server did not answer /health:\n{server.log_text()}")


@pytest.fixture(scope="module")
def served_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model with its validator (built here until training writes one)."""
    folder = tmp_path_factory.mktemp("served") / MODEL_NAME
    shutil.copytree(model_dir, folder)
    if not (folder / "validator.json").is_file():
        Validator.from_values(domain_values("apparel"), model=folder).save(folder)
    return folder


@pytest.fixture(scope="module")
def server(served_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(served_dir, tmp_path_factory.mktemp("logs") / "server.log", *LIMITS)
    yield running
    assert running.stop() == 0, running.log_text()


@pytest.fixture(scope="module")
def encoder(served_dir: Path) -> Any:
    """The same model in this process: what the server's answers must equal."""
    return load_encoder(served_dir)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def expected(encoder: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True))


def stats(client: httpx.Client) -> dict[str, int]:
    return dict(client.get("/health").json()["stats"])


def test_health_models_and_docs(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    # The default backend, auto, runs the ONNX export that train wrote.
    assert (health["model"], health["backend"], health["dimension"]) == (MODEL_NAME, "onnx", 384)
    assert health["validator"] is True
    assert health["token_counting"] == "tokenizer"
    assert health["limits"]["max_inputs"] == 64
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL_NAME]
    assert models["object"] == "list" and models["data"][0]["object"] == "model"
    assert client.get(f"/v1/models/{MODEL_NAME}").json()["id"] == MODEL_NAME
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/embeddings", "/v1/validate", "/v1/similarity", "/v1/models", "/health"):
        assert path in paths


def test_openai_client_gets_the_models_embeddings(server: Server, encoder: Any) -> None:
    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    texts = ["Sweaters", "Cardigan", "Car Battery"]
    want = expected(encoder, texts)
    default = api.embeddings.create(model=MODEL_NAME, input=texts)  # the client asks for base64
    floats = api.embeddings.create(model=MODEL_NAME, input=texts, encoding_format="float")
    for response in (default, floats):
        assert [d.index for d in response.data] == [0, 1, 2]
        got = np.array([d.embedding for d in response.data])
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert response.model == MODEL_NAME
    tokens = sum(len(ids) for ids in encoder.tokenizer(texts)["input_ids"])
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == tokens
    short = api.embeddings.create(model=MODEL_NAME, input="Sweaters", dimensions=64)
    vector = np.array(short.data[0].embedding)
    np.testing.assert_allclose(vector, want[0, :64] / np.linalg.norm(want[0, :64]), atol=1e-5)
    assert [m.id for m in api.models.list()] == [MODEL_NAME]
    with pytest.raises(openai.NotFoundError, match="not served here") as caught:
        api.embeddings.create(model="text-embedding-3-small", input="Sweaters")
    assert caught.value.code == "model_not_found"


def test_base64_is_little_endian_float32(client: httpx.Client) -> None:
    body = {"input": "Hoodies", "model": MODEL_NAME}
    floats = client.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    packed = client.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, np.array(floats, dtype=np.float32))
    # Clients that send every optional field send null for an unset one: floats.
    unset = client.post("/v1/embeddings", json={**body, "encoding_format": None})
    assert unset.status_code == 200
    assert unset.json()["data"][0]["embedding"] == floats


def test_similarity_is_the_cosine_matrix(client: httpx.Client, encoder: Any) -> None:
    a, b = ["Sweaters", "Hoodies"], ["Cardigan", "Toaster", "Sweaters"]
    response = client.post("/v1/similarity", json={"a": a, "b": b}).json()
    want = expected(encoder, a) @ expected(encoder, b).T
    np.testing.assert_allclose(np.array(response["matrix"]), want, atol=1e-5)
    square = np.array(client.post("/v1/similarity", json={"a": b}).json()["matrix"])
    assert square.shape == (3, 3)
    np.testing.assert_allclose(np.diag(square), 1.0, atol=1e-5)
    # Without b, a is compared with itself: its tokens were sent, and are counted, once.
    alone = client.post("/v1/similarity", json={"a": b}).json()["usage"]
    assert alone == client.post("/v1/embeddings", json={"input": b}).json()["usage"]
    # Cosines, so within [-1, 1]: float32 rounding put some texts' self-similarity above 1.
    more = "Jeans Dresses Socks Beanies Scarves Gloves Boots Sandals Shorts Skirts Blazers Vests"
    many = [*a, *b[:2], *more.split(), "Parkas", "Pajamas", "Tights", "Belts"]
    square = np.array(client.post("/v1/similarity", json={"a": many}).json()["matrix"])
    assert square.shape == (20, 20) and np.abs(square).max() <= 1.0


def test_validate_matches_the_validator(client: httpx.Client, served_dir: Path) -> None:
    values = ["Sweaters", "<b>Hoodies</b>", "Car Battery", None, "Sweaters", "cardigan"]
    response = client.post("/v1/validate", json={"values": values, "model": MODEL_NAME})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    want = Validator.load(served_dir).validate(values)
    assert [r["index"] for r in results] == list(range(len(values)))
    assert [r["value"] for r in results] == values
    for got, report in zip(results, want, strict=True):
        assert got["verdict"] == report.verdict.value
        assert got["score"] == pytest.approx(report.score, abs=1e-4)
        assert (got["nearest"], got["suggestion"]) == (report.nearest, report.suggestion)
    assert results[3]["verdict"] == "missing"
    assert results[0]["verdict"] == "valid"
    # Distinct values with their rows: the column's evidence, as in the Python API.
    body = {"values": ["Wool Socks", "Wool Sacks"], "rows": [40, 2]}
    counted = client.post("/v1/validate", json=body).json()["results"]
    assert counted[1]["suggestion"] == "Wool Socks" and "20x more rows" in counted[1]["reason"]
    alone = client.post("/v1/validate", json={**body, "column_evidence": False}).json()
    assert "more rows" not in alone["results"][1]["reason"]


def test_validate_calls_a_lone_surrogate_malformed_as_the_validator_does(
    client: httpx.Client, served_dir: Path, encoder: Any
) -> None:
    """/v1/validate judges unreadable text like any broken value (other endpoints refuse it
    with a 422): the verdict of Validator.validate, and no tokens, since nothing encodes it."""
    body = b'{"values": ["Hoodies", "\\ud800", "Wool \\udc80Socks", null, "", " "]}'
    response = client.post("/v1/validate", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    values = ["Hoodies", "\ud800", "Wool \udc80Socks", None, "", " "]
    want = Validator.load(served_dir).validate(values)
    assert [r["verdict"] for r in results] == [report.verdict.value for report in want]
    verdicts = ["valid", "malformed", "malformed", "missing", "missing", "missing"]
    assert [r["verdict"] for r in results] == verdicts  # blank cells: counted no tokens either
    tokens = len(encoder.tokenizer(["Hoodies"])["input_ids"][0])
    assert response.json()["usage"]["prompt_tokens"] == tokens


ERROR_CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("malformed JSON", "/v1/embeddings", {"content": b'{"input": ', "headers": JSON}, 422, "invalid_json"),
    ("number input", "/v1/embeddings", {"json": {"input": [1, 2]}}, 422, "invalid_request_body"),
    ("empty list", "/v1/embeddings", {"json": {"input": []}}, 422, "invalid_request_body"),
    ("unknown field", "/v1/embeddings", {"json": {"input": "x", "foo": 1}}, 422, "invalid_request_body"),
    ("not an object", "/v1/embeddings", {"json": ["x"]}, 422, "invalid_request_body"),
    ("string dimensions", "/v1/embeddings", {"json": {"input": "x", "dimensions": "8"}}, 422, "invalid_request_body"),
    ("zero dimensions", "/v1/embeddings", {"json": {"input": "x", "dimensions": 0}}, 422, "invalid_request_body"),
    ("bad format", "/v1/embeddings", {"json": {"input": "x", "encoding_format": "int8"}}, 422, "invalid_request_body"),
    ("form body", "/v1/embeddings", {"data": {"input": "x"}}, 422, "invalid_request_body"),
    ("values not a list", "/v1/validate", {"json": {"values": "Sweaters"}}, 422, "invalid_request_body"),
    ("too many inputs", "/v1/embeddings", {"json": {"input": ["x"] * 65}}, 400, "too_many_inputs"),
    ("input too long", "/v1/embeddings", {"json": {"input": ["x", "y" * 201]}}, 400, "input_too_long"),
    ("too many values", "/v1/validate", {"json": {"values": ["x"] * 65}}, 400, "too_many_inputs"),
    ("negative rows", "/v1/validate", {"json": {"values": ["x"], "rows": [-1]}}, 422, "invalid_request_body"),
    ("rows past int64", "/v1/validate", {"json": {"values": ["Sweaters", "Hoodies", "Cardigan"], "rows": [10**400] * 3}}, 422, "invalid_request_body"),
    ("rows of other values", "/v1/validate", {"json": {"values": ["x"], "rows": [1, 2]}}, 422, "invalid_request_body"),
    ("too many dimensions", "/v1/embeddings", {"json": {"input": "x", "dimensions": 385}}, 400, "invalid_dimensions"),
    ("matrix too large", "/v1/similarity", {"json": {"a": ["x"] * 21, "b": ["y"] * 20}}, 400, "matrix_too_large"),
    ("unknown model", "/v1/embeddings", {"json": {"input": "x", "model": "gpt-4"}}, 404, "model_not_found"),
    ("unknown model (validate)", "/v1/validate", {"json": {"values": ["x"], "model": "m"}}, 404, "model_not_found"),
    ("unknown model (similarity)", "/v1/similarity", {"json": {"a": ["x"], "model": "m"}}, 404, "model_not_found"),
    ("body too large", "/v1/embeddings", {"json": {"input": ["x" * 150] * 64, "user": "u" * 20000}}, 413, "body_too_large"),
    ("streamed body too large", "/v1/embeddings", {"content": iter([b'{"input": "', b"x" * 30000, b'"}'])}, 413, "body_too_large"),
    ("unknown route", "/v1/chat/completions", {"json": {}}, 404, "not_found"),
    ("body not UTF-8", "/v1/embeddings", {"content": b'{"input": "caf\xe9"}', "headers": JSON}, 422, "invalid_json"),
    ("JSON nested too deeply", "/v1/embeddings", {"content": b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}", "headers": JSON}, 422, "invalid_json"),
    ("number of 5,000 digits", "/v1/validate", {"content": b'{"values": ["x"], "rows": [' + b"9" * 5000 + b"]}", "headers": JSON}, 422, "invalid_json"),
    ("lone surrogate", "/v1/embeddings", {"content": b'{"input": "\\ud800"}', "headers": JSON}, 422, "invalid_text"),
    ("lone surrogate in a", "/v1/similarity", {"content": b'{"a": ["\\udfff x"]}', "headers": JSON}, 422, "invalid_text"),
    ("lone surrogate in b", "/v1/similarity", {"content": b'{"a": ["x"], "b": ["y", "\\ud800"]}', "headers": JSON}, 422, "invalid_text"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "request_kwargs", "status", "code"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_are_json_and_the_server_stays_up(
    client: httpx.Client, path: str, request_kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(path, **request_kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["type"]
    assert client.get("/health").json()["status"] == "ok"


def test_error_messages_say_what_is_wrong(client: httpx.Client) -> None:
    def message(path: str, **kwargs: Any) -> str:
        return str(client.post(path, **kwargs).json()["error"]["message"])

    assert "string or a non-empty list of strings" in message("/v1/embeddings", json={"input": 3})
    assert "at most 64" in message("/v1/embeddings", json={"input": ["x"] * 65})
    assert "201 characters; at most 200 per text" in message(
        "/v1/embeddings", json={"input": "y" * 201}
    )
    assert "20000 bytes" in message("/v1/embeddings", content=b"x" * 20001)
    assert "foo" in message("/v1/embeddings", json={"input": "x", "foo": 1})
    assert "Content-Type: application/json" in message("/v1/embeddings", data={"input": "x"})
    surrogate = b'{"input": ["Sweaters", "Wool \\ud800 Socks"]}'
    assert message("/v1/embeddings", content=surrogate, headers=JSON) == (
        "input[1] is not valid Unicode text: it holds a lone surrogate (\\ud800) at character 5"
    )
    assert message("/v1/embeddings", content=b'{"input": "caf\xe9"}', headers=JSON) == (
        "request body is not valid JSON: not UTF-8 (byte 0xe9 at position 14)"
    )
    too_large = client.post("/v1/similarity", json={"a": ["x"] * 21, "b": ["y"] * 20})
    assert too_large.json()["error"]["param"] == "b"
    too_large = client.post("/v1/similarity", json={"a": ["x"] * 21})
    assert too_large.json()["error"]["param"] == "a"
    wrong_method = client.get("/v1/embeddings")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"]
    assert wrong_method.headers["allow"] == "POST"  # RFC 9110: a 405 says what is allowed
    assert client.get("/nowhere").json()["error"]["message"] == "no route /nowhere"
    mismatch = client.post("/v1/validate", json={"values": ["x"], "rows": [1, 2]}).json()
    assert mismatch["error"]["message"] == "rows: 2 counts for 1 values"  # not 'Value error, '
    assert mismatch["error"]["param"] == "rows"
    probe = client.head("/health")  # as load balancers probe
    assert probe.status_code == 200 and not probe.content


def test_concurrent_requests_are_batched_and_match_single_ones(
    server: Server, client: httpx.Client, encoder: Any
) -> None:
    words = [f"Knitted item {i}" for i in range(96)]
    requests = [words[i : i + 8] for i in range(0, 96, 4)] * 2  # 48 overlapping requests
    before = stats(client)

    async def fire() -> list[list[list[float]]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            responses = await asyncio.gather(
                *(http.post("/v1/embeddings", json={"input": texts}) for texts in requests)
            )
        assert all(r.status_code == 200 for r in responses)
        return [[d["embedding"] for d in r.json()["data"]] for r in responses]

    answers = asyncio.run(fire())
    after = stats(client)
    want = expected(encoder, words)
    for texts, got in zip(requests, answers, strict=True):
        np.testing.assert_allclose(np.array(got), want[[words.index(t) for t in texts]], atol=1e-5)
    assert after["requests"] - before["requests"] == len(requests)
    assert after["encoded_texts"] - before["encoded_texts"] == len(words)  # each text once
    assert after["batches"] - before["batches"] < len(requests)
    assert after["largest_batch"] > 8  # texts of several requests in one encode call


def test_repeated_texts_come_from_the_cache(server: Server, client: httpx.Client) -> None:
    texts = [f"Cached category {i}" for i in range(10)]
    first = client.post("/v1/embeddings", json={"input": texts}).json()
    before = stats(client)
    again = client.post("/v1/embeddings", json={"input": texts}).json()
    after = stats(client)
    assert again["data"] == first["data"]
    assert again["usage"] == first["usage"]
    assert after["cache_hits"] - before["cache_hits"] == len(texts)
    assert after["encoded_texts"] == before["encoded_texts"]

    # The same new text asked by 16 requests at once is encoded once.
    async def same_text() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            body = {"input": ["Only once, please"]}
            responses = await asyncio.gather(
                *(http.post("/v1/embeddings", json=body) for _ in range(16))
            )
        assert {r.json()["data"][0]["embedding"][0] for r in responses} == {
            responses[0].json()["data"][0]["embedding"][0]
        }

    asyncio.run(same_text())
    assert stats(client)["encoded_texts"] == after["encoded_texts"] + 1


def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    """A model without validator data; a full queue answers 503; SIGTERM lets a big request
    in flight finish with 200 and the process exits 0."""
    folder = Path(resolve_base_model(DEFAULT_BASE_MODEL))
    args = ["--model-name", "base", "--max-inputs", "512", "--max-pending-texts", "1024"]
    running = start_server(folder, tmp_path / "server.log", *args)
    try:
        http = httpx.Client(base_url=running.url, timeout=120)
        unavailable = http.post("/v1/validate", json={"values": ["Sweaters"]})
        assert unavailable.status_code == 503
        assert unavailable.json()["error"]["code"] == "validator_unavailable"
        assert "no validator data" in unavailable.json()["error"]["message"]
        assert http.post("/v1/embeddings", json={"input": "x", "model": "base"}).status_code == 200

        big = [f"item {i}: a product description of a woollen winter garment" for i in range(512)]
        result: dict[str, httpx.Response] = {}

        def send_big() -> None:
            with httpx.Client(base_url=running.url, timeout=120) as other:
                result["big"] = other.post("/v1/embeddings", json={"input": big})

        sender = threading.Thread(target=send_big)
        sender.start()
        while http.get("/health").json()["stats"]["pending_texts"] == 0:
            time.sleep(0.02)
        # 512 texts are queued: 612 more exceed the 1024 allowed, so this one is refused.
        extra = {"a": [f"a{i}" for i in range(512)], "b": [f"b{i}" for i in range(100)]}
        busy = http.post("/v1/similarity", json=extra)
        assert busy.status_code == 503
        assert busy.json()["error"]["code"] == "server_overloaded"
        http.close()
        running.process.send_signal(signal.SIGTERM)
        sender.join(120)
        assert running.process.wait(60) == 0
    finally:
        running.stop()
    response = result["big"]
    assert response.status_code == 200
    assert len(response.json()["data"]) == 512
    log = running.log_text()
    assert re.search(r"received SIGTERM: finishing [1-9]\d* request\(s\) in flight", log), log


def test_requests_past_the_graceful_timeout_get_a_json_503(tmp_path: Path) -> None:
    """A request still encoding when --graceful-timeout runs out is answered a JSON 503,
    not uvicorn's plain-text 500 with a traceback in the log."""
    folder = Path(resolve_base_model(DEFAULT_BASE_MODEL))
    running = start_server(folder, tmp_path / "server.log", "--graceful-timeout", "0")
    big = [
        f"item {i}: " + "a long product description of a woollen garment " * 4 for i in range(2048)
    ]
    result: dict[str, httpx.Response] = {}

    def send_big() -> None:
        with httpx.Client(base_url=running.url, timeout=120) as other:
            result["big"] = other.post("/v1/embeddings", json={"input": big})

    sender = threading.Thread(target=send_big)
    try:
        sender.start()
        with httpx.Client(base_url=running.url, timeout=60) as http:
            while http.get("/health").json()["stats"]["pending_texts"] == 0:
                time.sleep(0.02)
        running.process.send_signal(signal.SIGTERM)
        sender.join(120)
        assert running.process.wait(60) == 0
    finally:
        running.stop()
    response = result["big"]
    if response.status_code != 200:  # it did not finish within the timeout
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "server_shutting_down"
    assert "Exception in ASGI application" not in running.log_text()


def test_a_request_whose_client_disconnects_is_not_encoded(tmp_path: Path) -> None:
    """uvicorn runs a handler on after its client goes away; the server stops it, so that the
    batcher drops the texts nobody waits for (behind a load balancer that times out, they
    would keep the queue full)."""
    folder = Path(resolve_base_model(DEFAULT_BASE_MODEL))
    args = ["--max-batch-size", "1", "--max-wait-ms", "0"]  # one encode per text
    running = start_server(folder, tmp_path / "server.log", *args)
    texts = [f"abandoned item {i}: a woollen winter garment" for i in range(200)]
    body = json.dumps({"input": texts}).encode()
    head = "POST /v1/embeddings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    try:
        with httpx.Client(base_url=running.url, timeout=60) as http:
            port = int(running.url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(head.encode() + body)
                while http.get("/health").json()["stats"]["pending_texts"] == 0:
                    time.sleep(0.02)
            # Closed: wait until the request is no longer in flight (only /health is).
            while (health := http.get("/health").json())["in_flight"] > 1:
                time.sleep(0.05)
            assert health["stats"]["encoded_texts"] < len(texts)
            answer = http.post("/v1/embeddings", json={"input": texts[:3]})
            assert answer.status_code == 200
            assert http.get("/health").json()["stats"]["pending_texts"] == 0
    finally:
        assert running.stop() == 0, running.log_text()


@pytest.fixture(scope="module")
def paced_server(
    served_dir: Path, encoder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Room for 24 pending texts (a similarity request of 12 + 12 texts fills it), and every
    batch waits a full second for company: a request is counted for at least that second.
    Its validator judges with the served model (no domain model of its own), so
    /v1/validate's encodes wait in those batches too."""
    folder = tmp_path_factory.mktemp("paced") / MODEL_NAME
    shutil.copytree(served_dir, folder)
    Validator.from_values(domain_values("apparel"), model=encoder, threshold=0.8).save(folder)
    args = ["--max-inputs", "12", "--max-pending-texts", "24", "--max-wait-ms", "1000"]
    running = start_server(folder, tmp_path_factory.mktemp("logs") / "paced.log", *args)
    yield running
    assert running.stop() == 0, running.log_text()


# Well-formed values that are not reference values: each goes to the model. New ones per try.
UNSEEN = ["Velvet", "Tweed", "Corduroy", "Linen", "Mohair", "Satin", "Seersucker", "Chambray"]
UNSEEN += ["Flannel"]


def pending(http: httpx.Client) -> tuple[int, int]:
    """/health's pending texts, and how many of them /v1/validate requests hold."""
    found = http.get("/health").json()["stats"]
    return found["pending_texts"], found["pending_validate_texts"]


def while_pending(
    running: Server, path: str, body: dict[str, Any], held: tuple[int, int], check: Any
) -> tuple[bool, httpx.Response]:
    """Send ``body`` to ``path``; once /health's ``pending`` is ``held``, call ``check``.
    Returns whether it was still ``held`` after ``check`` (so ``check`` ran while the request
    was counted: it cannot be counted, then not, then counted again), and its answer."""
    answer: dict[str, httpx.Response] = {}

    def send() -> None:
        with httpx.Client(base_url=running.url, timeout=120) as other:
            answer["it"] = other.post(path, json=body)

    sender = threading.Thread(target=send)
    sender.start()
    still = False
    try:
        with httpx.Client(base_url=running.url, timeout=60) as http:
            while sender.is_alive():
                if pending(http) == held:
                    check(http)
                    still = pending(http) == held
                    break
                time.sleep(0.01)
    finally:
        sender.join(120)
    return still, answer["it"]


def test_validate_counts_its_values_as_pending_texts(paced_server: Server) -> None:
    """A /v1/validate request counts its distinct values (not its rows, nor the missing ones
    it does not encode) towards --max-pending-texts while it is judged: /health shows them,
    a request that would pass the limit is refused, and they are released when it is
    answered."""
    refused: list[httpx.Response] = []
    for kind in ["Capes", "Waistcoats", "Ponchos"]:  # new values if it was answered too soon
        values = [f"{word} {kind}" for word in UNSEEN]
        body = {"values": [*values, values[0], None, "  "]}  # 12 rows, 9 distinct values
        pair = {"a": [f"a {kind} {i}" for i in range(8)], "b": [f"b {kind} {i}" for i in range(8)]}

        def check(http: httpx.Client, pair: dict[str, Any] = pair) -> None:
            refused.append(http.post("/v1/similarity", json=pair))  # 9 + 16 > 24

        held, answer = while_pending(paced_server, "/v1/validate", body, (9, 9), check)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["results"]) == 12
        with httpx.Client(base_url=paced_server.url, timeout=60) as http:
            assert pending(http) == (0, 0)
        if held:
            break
    else:
        pytest.fail("/health never showed the validate request's 9 values while it ran")
    assert refused[-1].status_code == 503, refused[-1].text
    assert refused[-1].json()["error"]["code"] == "server_overloaded"
    assert "9 texts waiting" in refused[-1].json()["error"]["message"]


def test_validate_is_refused_while_the_pending_texts_are_taken(paced_server: Server) -> None:
    """A similarity request holds all 24 pending texts: a validate request is answered 503 at
    once, as an embeddings request is; one of missing values only (nothing to encode) is
    judged. Over --max-inputs values it is a 400, as for embeddings."""
    with httpx.Client(base_url=paced_server.url, timeout=60) as http:
        too_many = http.post("/v1/validate", json={"values": [f"v{i}" for i in range(13)]})
        assert too_many.status_code == 400
        assert too_many.json()["error"]["code"] == "too_many_inputs"
    answers: list[httpx.Response] = []
    values = [f"{word} Kilts" for word in UNSEEN]
    for kind in ["Sarongs", "Tunics", "Caftans"]:
        pair = {
            "a": [f"a {kind} {i}" for i in range(12)],
            "b": [f"b {kind} {i}" for i in range(12)],
        }

        def check(http: httpx.Client) -> None:
            answers.append(http.post("/v1/validate", json={"values": [*values, values[0]]}))
            answers.append(http.post("/v1/validate", json={"values": [None, "", " "]}))

        held, answer = while_pending(paced_server, "/v1/similarity", pair, (24, 0), check)
        assert answer.status_code == 200, answer.text
        if held:
            break
    else:
        pytest.fail("/health never showed the similarity request's 24 texts while it ran")
    busy, missing = answers[-2:]
    assert busy.status_code == 503, busy.text
    error = busy.json()["error"]
    assert (error["code"], error["type"]) == ("server_overloaded", "service_unavailable_error")
    assert "24 texts waiting" in error["message"]
    assert missing.status_code == 200, missing.text
    assert [r["verdict"] for r in missing.json()["results"]] == ["missing"] * 3
    with httpx.Client(base_url=paced_server.url, timeout=60) as http:
        assert pending(http) == (0, 0)
        # The server still judges: the refused values fit now.
        assert http.post("/v1/validate", json={"values": values}).status_code == 200


def test_an_abandoned_validate_releases_its_pending_texts(paced_server: Server) -> None:
    """A validate request whose client disconnects stops counting once its validation, still
    running on its thread, is done; nothing stays counted."""
    values = [f"{word} Anoraks" for word in UNSEEN]
    body = json.dumps({"values": values}).encode()
    head = "POST /v1/validate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with httpx.Client(base_url=paced_server.url, timeout=60) as http:
        port = int(paced_server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head.encode() + body)
            counted = False
            for _ in range(6000):  # counted from the moment it is admitted
                counted = pending(http) == (9, 9)
                if counted:
                    break
                time.sleep(0.01)
            assert counted
        for _ in range(600):  # its thread finishes the validation, then releases them
            if pending(http) == (0, 0):
                break
            time.sleep(0.05)
        assert pending(http) == (0, 0)
        assert http.post("/v1/embeddings", json={"input": values}).status_code == 200


def test_serve_without_the_extra_names_the_install_command() -> None:
    code = "import sys; sys.modules['fastapi'] = None; import catembed.server"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install 'catembed[serve]'" in result.stderr
    code = (
        "import sys; sys.modules['uvicorn'] = None; from catembed.cli import main; "
        "main(['serve', '--model', '.'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Error: serving needs FastAPI and uvicorn" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no/such/folder"], "model folder not found"),
        (["--model", "{model}", "--port", "{busy}"], "{busy}: Address already in use"),
        (["--model", "{model}", "--host", "256.1.1.1"], "cannot listen on 256.1.1.1:8000: "),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """Exit 1 and one line, before the model loads (exit 3 is the anomaly gate's)."""
    folder = resolve_base_model(DEFAULT_BASE_MODEL)
    with socket.socket() as busy:  # a port some other program listens on
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [a.format(model=folder, busy=port) for a in args]
        result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert message.format(busy=port) in result.output


def test_serve_refuses_a_broken_onnx_export_in_one_line(served_dir: Path, tmp_path: Path) -> None:
    """An export that is not ONNX (a truncated copy, a Git LFS pointer) failed with
    onnxruntime's traceback."""
    folder = tmp_path / "model"
    shutil.copytree(served_dir, folder)
    export = folder / "onnx" / "model.onnx"
    export.write_text("version https://git-lfs.github.com/spec/v1\nsize 90868376\n")
    result = CliRunner().invoke(main, ["serve", "--model", str(folder), "--port", "0"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: cannot load the ONNX export {export} (remove it")
    assert result.output.count("\n") == 1 and "Protobuf parsing failed" in result.output


def test_port_0_is_one_free_port_for_every_address() -> None:
    """--host '' binds 0.0.0.0 and :: (where the machine has IPv6): --port 0 gave each its
    own port, so a client of the other family found nothing on the port logged first."""
    sockets = bind_sockets("", 0)
    try:
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()


def _has_socket(pid: int) -> bool:
    """Whether process ``pid`` has a socket open (Linux; its files come and go meanwhile)."""
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith("socket:"):
                    return True
    return False


def test_a_port_taken_while_the_model_loads_is_a_one_line_error(tmp_path: Path) -> None:
    """Two servers started on one port at once both bind it (SO_REUSEADDR, neither listens
    yet); the one that listens second failed with uvicorn's traceback."""
    folder = resolve_base_model(DEFAULT_BASE_MODEL)
    with socket.socket() as other:  # the other server, binding as catembed does
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "catembed.cli", "serve", "--model", str(folder)]
        command += ["--port", str(port)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        # Its socket (bound at once) opens before its model loads (seconds); then we listen.
        while process.poll() is None and not _has_socket(process.pid):
            time.sleep(0.01)
        time.sleep(0.1)
        other.listen()
        output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 1, output
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-inputs", "0"], "Invalid value for '--max-inputs': max inputs must be at least 1"),
        (["--max-batch-tokens", "0"], "'--max-batch-tokens': max batch tokens must be at least 1"),
        (["--max-wait-ms", "nan"], "'--max-wait-ms': max wait must be in [0, 1000] ms, got nan"),
        (["--cache-size", "-1"], "'--cache-size': cache size must not be negative, got -1"),
        (["--max-similarity-cells", "0"], "'--max-similarity-cells': max similarity cells must"),
        (["--graceful-timeout", "nan"], "'--graceful-timeout': must be a number of seconds"),
        (["--graceful-timeout", "inf"], "'--graceful-timeout': must be a number of seconds, at "),
        (
            ["--max-pending-texts", "10"],
            "--max-pending-texts (10) must be at least twice --max-inputs (2048)",
        ),
    ],
)
def test_serve_refuses_an_option_out_of_range_as_a_usage_error(
    args: list[str], message: str
) -> None:
    # They exited 1 naming no option ('max inputs must be at least 1'), unlike --port.
    result = CliRunner().invoke(main, ["serve", "--model", "no/such/folder", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert message in result.output
    assert result.output.endswith(" serve --help')\n")


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_refuses_a_port_out_of_range_before_loading_the_model(port: str) -> None:
    folder = resolve_base_model(DEFAULT_BASE_MODEL)
    result = CliRunner().invoke(main, ["serve", "--model", folder, "--port", port])
    assert result.exit_code == 2
    assert f"Invalid value for '--port': {port} is not in the range 0<=x<=65535" in result.output
    assert "Traceback" not in result.output
