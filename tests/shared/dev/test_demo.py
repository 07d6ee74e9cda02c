"""The demo kit's cheap pieces: the service's metrics, the bounded load, the specs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sla.dev.demo import (
    BUCKETS,
    MAX_RATE,
    SCRAPE_INTERVAL_SECONDS,
    DemoService,
    Faults,
    LoadGenerator,
    alertmanager_config,
    demo_rules,
    demo_specs,
    history_text,
    prometheus_config,
)
from sla.model.policy import SLAPolicy
from sla.model.slo import SLODefinition
from sla.specs import load_paths


@pytest.fixture
def service() -> Iterator[DemoService]:
    with DemoService() as started:
        yield started


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as opened:
        yield opened


def samples(
    service: DemoService,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = service.metrics_text().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_idle_service_exports_both_codes_at_zero(service: DemoService) -> None:
    exported = samples(service)

    assert exported[("http_requests_total", (("code", "200"),))] == 0
    assert exported[("http_requests_total", (("code", "500"),))] == 0
    assert exported[("http_request_duration_seconds_count", ())] == 0


def test_error_ratio_fails_exactly_that_share(
    service: DemoService, client: httpx.Client
) -> None:
    """0.2 of 50 requests is 10 errors, spread evenly: every fifth one."""
    client.post(f"{service.url}/control", json={"error_ratio": 0.2})

    codes = [client.get(f"{service.url}/").status_code for _ in range(50)]

    assert codes.count(500) == 10
    assert codes[4::5] == [500] * 10
    exported = samples(service)
    assert exported[("http_requests_total", (("code", "200"),))] == 40
    assert exported[("http_requests_total", (("code", "500"),))] == 10


def test_slow_share_lands_above_the_threshold_bucket(
    service: DemoService, client: httpx.Client
) -> None:
    """Half of 6 requests slowed by 0.3 s: 3 at or under 0.25 s, 6 under 0.5 s."""
    client.post(
        f"{service.url}/control", json={"slow_ratio": 0.5, "latency_seconds": 0.3}
    )

    for _ in range(6):
        client.get(f"{service.url}/")

    exported = samples(service)
    bucket = "http_request_duration_seconds_bucket"
    assert exported[(bucket, (("le", "0.25"),))] == 3
    assert exported[(bucket, (("le", "0.5"),))] == 6
    assert exported[(bucket, (("le", "+Inf"),))] == 6
    assert {dict(labels)["le"] for name, labels in exported if name == bucket} == {
        *(repr(bound) for bound in BUCKETS),
        "+Inf",
    }


def test_control_reads_back_and_an_empty_post_heals(
    service: DemoService, client: httpx.Client
) -> None:
    client.post(f"{service.url}/control", json={"error_ratio": 1})
    assert client.get(f"{service.url}/control").json()["error_ratio"] == 1

    client.post(f"{service.url}/control")

    assert client.get(f"{service.url}/control").json() == {
        "error_ratio": 0.0,
        "slow_ratio": 0.0,
        "latency_seconds": 0.0,
    }
    assert client.get(f"{service.url}/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"error_ratio": 1.5},
        {"error_ratio": "half"},
        {"latency_seconds": 60},
        {"errors": 0.1},
    ],
    ids=["ratio-above-one", "not-a-number", "latency-too-long", "unknown-field"],
)
def test_control_refuses_wrong_faults(
    service: DemoService, client: httpx.Client, body: dict[str, object]
) -> None:
    answer = client.post(f"{service.url}/control", json=body)

    assert answer.status_code == 400
    assert service.faults == Faults()


def test_latency_alone_slows_every_request() -> None:
    assert Faults.from_json({"latency_seconds": 0.1}).slow_ratio == 1.0
    assert Faults.from_json({"latency_seconds": 0.1, "slow_ratio": 0}).slow_ratio == 0


def test_load_stops_by_itself_at_its_count(service: DemoService) -> None:
    load = LoadGenerator(
        service.url + "/", rate=100, duration=30, max_requests=15
    ).start()
    try:
        assert load.wait(timeout=5)
    finally:
        load.stop()

    assert load.stats.sent == 15
    assert load.stats.answered == {200: 15}
    assert samples(service)[("http_requests_total", (("code", "200"),))] == 15


def test_load_stops_by_itself_at_its_duration(service: DemoService) -> None:
    """20/s for 0.5 s: the slots at 0, 0.05 … 0.45 s, ten of them."""
    started = time.monotonic()
    with LoadGenerator(service.url + "/", rate=20, duration=0.5) as load:
        assert load.wait(timeout=5)
    assert time.monotonic() - started < 2

    assert load.stats.sent == 10


def test_load_skips_slots_when_every_request_waits(
    service: DemoService, client: httpx.Client
) -> None:
    """One request in flight, each 0.3 s long, slots every 0.05 s: most are
    skipped, none queued, and the load still ends on time."""
    client.post(f"{service.url}/control", json={"latency_seconds": 0.3})

    with LoadGenerator(service.url + "/", rate=20, duration=1, in_flight=1) as load:
        assert load.wait(timeout=5)

    assert load.stats.sent + load.stats.skipped == 20
    assert 1 <= load.stats.sent <= 5


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://192.0.2.10:8080/", {"rate": 1, "duration": 1}),
        ("https://127.0.0.1/", {"rate": 1, "duration": 1}),
        ("http://127.0.0.1:1/", {"rate": MAX_RATE + 1, "duration": 1}),
        ("http://127.0.0.1:1/", {"rate": 1, "duration": 0}),
        ("http://127.0.0.1:1/", {"rate": 1, "duration": 1, "in_flight": 1000}),
    ],
    ids=["other-host", "https", "rate-too-high", "no-duration", "too-many-in-flight"],
)
def test_load_refuses_anything_unbounded_or_off_loopback(
    url: str, options: dict[str, float]
) -> None:
    with pytest.raises(ValueError):
        LoadGenerator(url, **options)  # type: ignore[arg-type]


def history_samples(text: str) -> dict[str, list[tuple[float, int]]]:
    """``name{labels}`` → [(value, unix seconds)], from OpenMetrics lines."""
    series: dict[str, list[tuple[float, int]]] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, value, at = line.rsplit(" ", 2)
        series.setdefault(key, []).append((float(value), int(at)))
    return series


def test_history_is_an_hour_of_healthy_traffic() -> None:
    text = history_text(job="demo", instance="127.0.0.1:1", end=7200.0, rate=2)

    series = history_samples(text)
    target = 'instance="127.0.0.1:1",job="demo"'
    good = series[f'http_requests_total{{code="200",{target}}}']
    # 65 minutes at 2 a second, a sample a minute from 0 up to `end`.
    assert len(good) == 66
    assert good[0] == (0, 7200 - 65 * 60)
    assert good[-1] == (65 * 60 * 2, 7200)
    assert {
        value for value, _ in series[f'http_requests_total{{code="500",{target}}}']
    } == {0}
    # Every request fast: the lowest bucket holds them all, as does the count.
    fastest = series[f'http_request_duration_seconds_bucket{{le="0.025",{target}}}']
    assert fastest == series[f"http_request_duration_seconds_count{{{target}}}"] == good
    assert text.startswith("# TYPE http_requests counter\n")
    assert text.endswith("# EOF\n")


def test_demo_specs_load_and_give_rules_with_page_rows(tmp_path: Path) -> None:
    specs = tmp_path / "slos.yaml"
    specs.write_text(demo_specs(namespace="shop"))

    loaded = load_paths([specs], scrape_interval=SCRAPE_INTERVAL_SECONDS)

    assert loaded.ok, [finding.describe() for finding in loaded.errors]
    kinds = sorted(type(obj).__name__ for obj in loaded.objects)
    assert kinds == ["SLAPolicy", "SLODefinition", "SLODefinition"]
    policy = next(obj for obj in loaded.objects if isinstance(obj, SLAPolicy))
    assert policy.spec.lift.hold_for == 60
    assert policy.spec.scope.selector.match_labels == {"app": "demo"}
    for slo in (obj for obj in loaded.objects if isinstance(obj, SLODefinition)):
        assert slo.metadata.namespace == "shop"
        assert str(slo.spec.window) == "1h"
    rules = demo_rules([specs], scrape_interval=2)
    assert rules.count("alert: SLOErrorBudgetBurn") == 4
    assert "interval: 2s" in rules


def test_alertmanager_reads_the_token_from_its_file(tmp_path: Path) -> None:
    config = alertmanager_config(
        "http://127.0.0.1:8190/", credentials_file=tmp_path / "token"
    )

    webhook = config["receivers"][0]["webhook_configs"][0]
    assert webhook["http_config"]["authorization"] == {
        "type": "Bearer",
        "credentials_file": str(tmp_path / "token"),
    }
    assert webhook["send_resolved"] is True


def test_prometheus_alerts_into_the_given_alertmanager(tmp_path: Path) -> None:
    config = prometheus_config(
        targets={"demo": ["127.0.0.1:5000"]},
        rule_files=[tmp_path / "rules.yml"],
        alertmanager="http://127.0.0.1:9093",
        scrape_interval=2,
    )

    assert config["global"]["scrape_interval"] == "2s"
    assert config["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:9093"]}
    ]
    assert config["rule_files"] == [str(tmp_path / "rules.yml")]
