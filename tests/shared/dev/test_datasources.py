"""What the ``sla dev`` console is told about its datasources: a line when one stops
answering and a line when it answers again, never one a check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from sla.dev.datasources import DatasourceWatch
from sla.model.slo import SLODefinition
from sla.runtime.settings import load_settings
from tests.support.prometheus import FakePrometheus, Reply, free_port

OVERLOADED = Reply(
    status=503,
    body={"status": "error", "errorType": "unavailable", "error": "overloaded"},
)


@pytest.fixture
async def watches() -> AsyncIterator[Callable[[str], DatasourceWatch]]:
    """Call it with the default datasource's URL; every watch closes at teardown."""
    made: list[DatasourceWatch] = []

    def make(url: str) -> DatasourceWatch:
        made.append(DatasourceWatch(load_settings(prometheus_url=url)))
        return made[-1]

    yield make
    for watch in made:
        await watch.aclose()


async def test_unreachable_datasource_is_told_once_with_its_url_and_reason(
    watches: Callable[[str], DatasourceWatch],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    watch = watches(url)

    first = await watch.check([url])
    later = [await watch.check([url]) for _ in range(3)]

    assert first == [
        f"datasource {url} unusable: ConnectError: All connection attempts failed; "
        "the SLOs it serves are not evaluated until it answers"
    ]
    assert later == [[], [], []]


async def test_failing_datasource_is_told_again_once_it_answers(
    watches: Callable[[str], DatasourceWatch],
    fake_prometheus: Callable[..., FakePrometheus],
) -> None:
    # One 503, then the default answer, which repeats.
    fake = fake_prometheus(OVERLOADED, Reply())
    watch = watches(fake.url)

    checks = [await watch.check([fake.url]) for _ in range(3)]

    assert checks == [
        [
            f"datasource {fake.url} unusable: HTTP 503: overloaded; "
            "the SLOs it serves are not evaluated until it answers"
        ],
        [f"datasource {fake.url} answers again"],
        [],
    ]
    # One request a check: the next check is the retry.
    assert len(fake.received) == 3


async def test_datasource_that_answers_from_the_start_is_not_mentioned(
    watches: Callable[[str], DatasourceWatch],
    fake_prometheus: Callable[..., FakePrometheus],
) -> None:
    fake = fake_prometheus(Reply())
    watch = watches(fake.url)

    assert await watch.check([fake.url]) == []


def test_urls_are_the_default_and_those_the_slos_name(
    watches: Callable[[str], DatasourceWatch],
) -> None:
    watch = watches("http://127.0.0.1:9090/")
    slos = [_slo("default"), _slo("other", datasource="http://127.0.0.1:9091/")]

    assert watch.urls(slos) == {"http://127.0.0.1:9090", "http://127.0.0.1:9091"}


def _slo(name: str, *, datasource: str | None = None) -> SLODefinition:
    spec = {
        "service": name,
        "objective": 99,
        "window": "30d",
        "indicator": {
            "ratio": {"bad": {"metric": "errors_total"}, "total": {"metric": "t"}}
        },
    }
    if datasource is not None:
        spec["datasource"] = {"url": datasource}
    return SLODefinition.model_validate(
        {
            "apiVersion": "sla.dev/v1alpha1",
            "kind": "SLODefinition",
            "metadata": {"name": name},
            "spec": spec,
        }
    )
