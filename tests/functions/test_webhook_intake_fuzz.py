"""Fuzzing webhook-intake over HTTP: no body makes it answer 5xx or fall over.

The function runs in uvicorn on 127.0.0.1 with a real store and a recording sink
that accepts everything, so a 5xx could only come from the function itself. Three
sources of bodies: arbitrary JSON, well-formed notifications with one part
replaced or removed, and arbitrary bytes. Each answer must be 200, or a 4xx whose
JSON body says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.webhook import TOKEN, ServedFunction, serve_intake, stamp

__all__ = ["serve_intake"]

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # One server serves every example of a test; nothing in it is reset between
    # examples, and nothing needs to be.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)

edge_times = st.sampled_from(
    [
        "2026-01-05T10:00:00.123456789+05:30",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-02-30T10:00:00Z",
        "2026-01-05T10:00:00",
        "",
    ]
)
# Mostly valid times, so that most notifications get past validation.
times = (
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC),
    ).map(stamp)
    | edge_times
)
label_text = st.text(max_size=30)
labels = st.dictionaries(label_text, label_text, min_size=1, max_size=5)
alerts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]),
        "labels": labels,
        "startsAt": times,
    },
    optional={
        "annotations": st.dictionaries(label_text, label_text, max_size=3),
        "endsAt": times,
        "generatorURL": st.text(max_size=40),
        "fingerprint": st.from_regex(r"\A[0-9a-f]{16}\Z") | st.text(max_size=5),
    },
)
notifications = st.fixed_dictionaries(
    {"version": st.just("4"), "alerts": st.lists(alerts, max_size=6)},
    optional={
        "receiver": st.text(max_size=20),
        "status": st.sampled_from(["firing", "resolved"]),
        "groupKey": st.text(max_size=40),
        "truncatedAlerts": st.integers(min_value=0, max_value=10),
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": labels,
        "externalURL": st.text(max_size=40),
    },
)


@st.composite
def mutated_notifications(draw: st.DrawFn) -> Any:
    """A notification with one value, somewhere in it, replaced or removed."""
    body = draw(notifications)
    paths = list(_paths(body))
    path = draw(st.sampled_from(paths))
    parent, key = _parent(body, path[:-1]), path[-1]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = draw(json_values)
    return body


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        yield (*prefix, key)
        if isinstance(child, dict | list) and child:
            yield from _paths(child, (*prefix, key))


def _parent(body: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


@pytest.fixture
def client(
    serve_intake: Callable[..., ServedFunction],
) -> Iterator[tuple[httpx.Client, ServedFunction]]:
    function = serve_intake()
    with httpx.Client(base_url=function.url, trust_env=False, timeout=30) as http:
        yield http, function


def post_json(http: httpx.Client, content: bytes) -> httpx.Response:
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    return http.post("/", headers=headers, content=content)


def assert_answered_with_a_reason(answer: httpx.Response) -> None:
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, (
        answer.status_code,
        answer.text,
    )
    body = answer.json()
    if answer.status_code != 200:
        assert isinstance(body["error"], str)
        assert body["error"]


@FUZZ
@given(body=json_values)
def test_arbitrary_json_is_refused_or_accepted_never_failed(
    client: tuple[httpx.Client, ServedFunction], body: Any
) -> None:
    http, _ = client

    answer = post_json(http, json.dumps(body).encode())

    assert_answered_with_a_reason(answer)


@FUZZ
@given(body=notifications)
def test_generated_notifications_are_refused_or_accepted_never_failed(
    client: tuple[httpx.Client, ServedFunction], body: Any
) -> None:
    http, _ = client

    answer = post_json(http, json.dumps(body).encode())

    assert_answered_with_a_reason(answer)


@FUZZ
@given(body=mutated_notifications())
def test_mutated_notifications_are_refused_or_accepted_never_failed(
    client: tuple[httpx.Client, ServedFunction], body: Any
) -> None:
    http, _ = client

    answer = post_json(http, json.dumps(body).encode())

    assert_answered_with_a_reason(answer)


@FUZZ
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_never_failed(
    client: tuple[httpx.Client, ServedFunction], content: bytes
) -> None:
    http, _ = client

    answer = post_json(http, content)

    assert_answered_with_a_reason(answer)


def test_the_server_still_answers_after_fuzzing(
    client: tuple[httpx.Client, ServedFunction],
) -> None:
    """A sanity check that the fixture's server is the one answering, and that
    every 5xx above would have been seen: it counts what it answered."""
    http, function = client

    post_json(http, b"[")
    answer = post_json(http, json.dumps({"version": "4", "alerts": []}).encode())

    assert answer.status_code == 200
    assert function.answers() == {400: 1, 200: 1}
