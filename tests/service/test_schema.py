"""schemathesis against ``/openapi.json`` of a real ``katopotato serve``: generated requests, valid
and invalid, get no 5xx and no answer that breaks the documented schema, status or media type.

The service runs without an allowlist, and every generated session URL (and webhook output URL)
is pointed at a loopback address, so the URL guard refuses it before any connection: the run sends
no traffic anywhere but the service itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from .conftest import ADMIN_TOKEN, KATOPOTATO, free_port, serve_env

EXAMPLES = int(os.environ.get("KP_SCHEMA_EXAMPLES", "30"))
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    if not KATOPOTATO.exists():
        pytest.skip(f"{KATOPOTATO} not installed (run make install)")
    data: Path = tmp_path_factory.mktemp("schema-data")
    env = serve_env(data, COUCHPOTATO_API_TOKEN=ADMIN_TOKEN)
    env.pop("COUCHPOTATO_URL_ALLOWLIST")
    port = free_port()
    proc = subprocess.Popen(
        [str(KATOPOTATO), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers=AUTH, wait_for_schema=90)
        yield schema
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _refused(url: Any) -> Any:
    return f"http://127.0.0.1:9/{int(time.time() * 1e6)}" if isinstance(url, str) else url  # the guard refuses it


def _not_http(response: Any) -> bool:
    """A request aiohttp's HTTP parser refused before any handler ran (an empty Content-Length, a
    header it cannot read): its plain-text 400 is the HTTP layer's, not the API's. Every answer of
    the API itself is JSON (the error middleware), and that is what the checks hold it to."""
    kind = response.headers.get("content-type", [""])  # lower-case names, list values
    kind = kind[0] if isinstance(kind, list) else kind
    return response.status_code == 400 and kind.startswith("text/plain")


def _run(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        body = case.body
        is_create = case.method == "POST" and case.path == "/v1/sessions"
        if is_create and isinstance(body, dict) and isinstance(body.get("url"), str):
            body["url"] = _refused(body["url"])
        outputs = body.get("outputs") if is_create and isinstance(body, dict) else None
        if case.path == "/v1/sessions/{id}/outputs" and isinstance(body, dict):
            outputs = [body]
        for output in outputs if isinstance(outputs, list) else []:
            if isinstance(output, dict) and "url" in output:  # a webhook: never a connection anywhere
                output["url"] = _refused(output["url"])
        response = case.call(headers=AUTH)
        if _not_http(response):
            return
        case.validate_response(response, checks=CHECKS, headers=AUTH, transport_kwargs={"headers": dict(AUTH)})

    check()


@pytest.mark.timeout(600)
def test_the_api_keeps_its_schema(api_schema: schemathesis.BaseSchema) -> None:
    # (schemathesis.pytest.from_fixture does not work with pytest 9: operations are driven here)
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    failures = []
    for operation in operations:
        for mode in GenerationMode:
            try:
                _run(operation, mode)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing can be invalid in a request without inputs
            except Exception as e:  # collect them all, then fail with every one named
                failures.append(f"{operation.label} [{mode.value}]: {str(e)[:2000]}")
    assert not failures, "\n\n".join(failures)
