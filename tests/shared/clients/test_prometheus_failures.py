"""Failures Prometheus cannot be made to show on demand, played by a fake server.

Every test bounds the time the client takes: a tick must end even when its
datasource does not answer.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sla.clients.prometheus import (
    Deadline,
    PrometheusClient,
    QueryRejected,
    QueryUnavailable,
    RetryPolicy,
)
from sla.errors import DatasourceError
from tests.support.prometheus import FakePrometheus, Reply, free_port

AT = datetime(2025, 1, 6, tzinfo=UTC)
FAST_RETRY = RetryPolicy(
    max_attempts=3, max_seconds=5.0, initial_backoff=0.01, max_backoff=0.05, jitter=0.01
)
EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}

StartFake = Callable[..., FakePrometheus]


def error_body(error_type: str, message: str) -> dict[str, str]:
    return {"status": "error", "errorType": error_type, "error": message}


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(500, id="internal-error"),
        pytest.param(503, id="unavailable"),
        pytest.param(429, id="too-many-requests"),
    ],
)
async def test_transient_status_is_retried(
    fake_prometheus: StartFake, status: int
) -> None:
    fake = fake_prometheus(Reply(status, error_body("internal", "busy")), Reply())

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        samples = await client.instant("vector(1)", time=AT)

    assert samples == []
    assert len(fake.received) == 2
    assert (client.stats.requests, client.stats.retries) == (2, 1)


async def test_persistent_503_is_unavailable_after_bounded_attempts(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply(503, error_body("unavailable", "overloaded")))
    started = time.monotonic()

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryUnavailable, match="overloaded") as caught:
            await client.instant("vector(1)", time=AT)

    assert time.monotonic() - started < 2.0
    assert len(fake.received) == FAST_RETRY.max_attempts
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        pytest.param(400, "bad_data", id="bad-data"),
        pytest.param(422, "execution", id="execution"),
    ],
)
async def test_rejection_is_not_retried(
    fake_prometheus: StartFake, status: int, error_type: str
) -> None:
    fake = fake_prometheus(Reply(status, error_body(error_type, "found duplicates")))
    expr = "sum(x) + on () y"

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryRejected) as caught:
            await client.instant(expr, time=AT)

    assert len(fake.received) == 1
    assert caught.value.status_code == status
    assert caught.value.error_type == error_type
    assert "found duplicates" in caught.value.message
    assert caught.value.query == expr
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


async def test_missing_permission_is_rejected_without_retry(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply(403, "forbidden"))

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryRejected, match="HTTP 403: forbidden"):
            await client.instant("vector(1)", time=AT)

    assert len(fake.received) == 1


async def test_unreachable_prometheus_is_unavailable() -> None:
    # Nothing listens on a port just found free on the loopback address.
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    async with PrometheusClient(url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryUnavailable) as caught:
            await client.instant("vector(1)", time=AT)

    assert time.monotonic() - started < 2.0
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context whose certificate no CA signed."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = [
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        *("-addext", "subjectAltName=IP:127.0.0.1"),
    ]
    subprocess.run(command, check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("scheme", ["https", "HTTPS"])
async def test_an_https_datasource_verifies_its_certificate(
    self_signed: ssl.SSLContext, scheme: str
) -> None:
    # Plain http:// datasources skip building a TLS context; https:// ones,
    # however the scheme is written, must still refuse an unknown certificate.
    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=self_signed)
    port = server.sockets[0].getsockname()[1]
    try:
        async with PrometheusClient(
            f"{scheme}://127.0.0.1:{port}", retry=FAST_RETRY
        ) as client:
            with pytest.raises(QueryUnavailable) as caught:
                await client.instant("vector(1)", time=AT)
    finally:
        server.close()

    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value.__cause__)


async def test_slow_answer_times_out(fake_prometheus: StartFake) -> None:
    fake = fake_prometheus(Reply(delay=30.0))
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.01, jitter=0.01)
    started = time.monotonic()

    async with PrometheusClient(fake.url, timeout=0.2, retry=retry) as client:
        with pytest.raises(QueryUnavailable, match="no answer within") as caught:
            await client.instant("vector(1)", time=AT)

    # Two attempts of 0.2 s each and a short backoff.
    assert time.monotonic() - started < 1.5
    assert len(fake.received) == 2
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_deadline_ends_retries_and_waits(fake_prometheus: StartFake) -> None:
    fake = fake_prometheus(Reply(delay=30.0))
    started = time.monotonic()

    async with PrometheusClient(fake.url, timeout=10.0, retry=FAST_RETRY) as client:
        with pytest.raises(QueryUnavailable):
            await client.instant("vector(1)", time=AT, deadline=Deadline.after(0.5))

    assert time.monotonic() - started < 1.5


async def test_answer_that_is_not_json_is_a_datasource_error(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply(200, "<html>login</html>"))

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(DatasourceError, match="not a Prometheus API answer"):
            await client.instant("vector(1)", time=AT)


NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
    "<body><h1>Not Found</h1><p>The requested URL was not found.</p></body></html>"
)


async def test_a_web_page_instead_of_the_api_is_described_not_quoted(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply(404, NOT_FOUND_PAGE, content_type="text/html"))

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryRejected) as caught:
            await client.instant("vector(1)", time=AT)

    message = str(caught.value)
    assert "HTTP 404" in message
    assert f"text/html body of {len(NOT_FOUND_PAGE)} bytes" in message
    assert f"is {fake.url}/api/v1/query a Prometheus query API?" in message
    assert "<" not in message
    assert len(fake.received) == 1


async def test_a_plain_text_refusal_is_quoted_by_its_first_line(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(
        Reply(403, "denied by the proxy\nrequest id 7f3a", content_type="text/plain")
    )

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryRejected) as caught:
            await client.instant("vector(1)", time=AT)

    assert "HTTP 403: denied by the proxy (query: vector(1))" in str(caught.value)


async def test_a_web_page_answered_with_200_is_described_not_quoted(
    fake_prometheus: StartFake,
) -> None:
    login = "<html><body><form>login</form></body></html>"
    fake = fake_prometheus(Reply(200, login, content_type="text/html; charset=utf-8"))

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(DatasourceError) as caught:
            await client.instant("vector(1)", time=AT)

    message = str(caught.value)
    assert message.startswith("not a Prometheus API answer: OK, with a text/html")
    assert f"body of {len(login)} bytes" in message and "<" not in message


async def test_bearer_token_is_sent_and_kept_out_of_repr(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply())

    async with PrometheusClient(fake.url, token="s3cret") as client:
        await client.instant("vector(1)", time=AT)

    assert fake.received[0].headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(client)


async def test_a_password_in_the_address_is_sent_as_basic_auth_and_never_shown(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(
        Reply(), Reply(404, NOT_FOUND_PAGE, content_type="text/html")
    )
    with_password = fake.url.replace("http://", "http://admin:s3cret@")

    async with PrometheusClient(with_password, retry=FAST_RETRY) as client:
        await client.instant("vector(1)", time=AT)
        with pytest.raises(QueryRejected) as caught:
            await client.instant("vector(1)", time=AT)

    # base64 of "admin:s3cret"
    assert fake.received[0].headers["Authorization"] == "Basic YWRtaW46czNjcmV0"
    assert client.url == fake.url
    assert "s3cret" not in repr(client) and "s3cret" not in str(caught.value)
    assert f"is {fake.url}/api/v1/query a Prometheus query API?" in str(caught.value)


async def test_requests_in_flight_are_limited(fake_prometheus: StartFake) -> None:
    fake = fake_prometheus(Reply(delay=0.1))

    async with PrometheusClient(fake.url, concurrency=2) as client:
        exprs = {f"tag{index}": f"vector({index})" for index in range(6)}
        await client.instant_many(exprs, time=AT, max_per_query=1)

    assert len(fake.received) == 6
    assert fake.max_in_flight == 2


async def test_transient_failure_fails_the_whole_batch(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply(503, error_body("unavailable", "overloaded")))
    exprs = {f"tag{index}": f"vector({index})" for index in range(4)}

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryUnavailable):
            await client.instant_many(exprs, time=AT, max_per_query=2)


async def test_refused_access_fails_a_batch_without_splitting_it(
    fake_prometheus: StartFake,
) -> None:
    fake = fake_prometheus(Reply(403, "forbidden"))
    exprs = {f"tag{index}": f"vector({index})" for index in range(8)}

    async with PrometheusClient(fake.url, retry=FAST_RETRY) as client:
        with pytest.raises(QueryRejected, match="HTTP 403"):
            await client.instant_many(exprs, time=AT)

    assert len(fake.received) == 1
