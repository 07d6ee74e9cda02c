"""``sla dev`` end to end, on real traffic, every server real but the Kubernetes API.

The demo service (``sla.dev.demo``) answers a steady load; Debian's Prometheus
scrapes it every 2 s over an hour of healthy history written with promtool, with
the output of ``sla rules -o rules`` as its rule file and a real Alertmanager as
its alerting target, whose webhook reaches webhook-intake with the bearer token
from ``sla dev``'s token file. ``sla dev`` runs as a subprocess with its minute
shortened to 5 s, a fresh database on the local PostgreSQL and the Kubernetes API
double as its cluster, holding two Deployments labelled ``app=demo`` (the policy's
scope) and one that is not.

The story, each step waited for with a deadline:

1. both SLOs are evaluated healthy;
2. the service fails 15 % of its requests and slows 15 % by half a second:
   the page alerts of ``sla rules`` fire in Prometheus, reach Alertmanager and,
   through webhook-intake, sli-calculator; policy-evaluator freezes the two
   Deployments (``sla.dev/frozen`` annotations in the double), not the third;
3. the service recovers: the alerts resolve, and after the policy's holdFor of
   one minute (measured on snapshot times, which sit on whole minutes) the
   freeze is lifted and the annotations are gone;
4. the records tell the whole story: audit log, freeze events, budget-api's API
   and /metrics; no dead letters; no event handled twice or lost.

About five minutes: the failure lasts until the freeze is seen (one to two
evaluation minutes), the lift needs the alert to clear and two recovered minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sla.dev.demo import (
    DEMO_JOB,
    DEMO_NAMESPACE,
    AlertmanagerProcess,
    DemoService,
    LoadGenerator,
    PrometheusProcess,
    history_text,
)
from sla.dev.demo import demo_specs as write_demo_specs
from sla.dev.system import ensure_token
from tests.support.kube import KubeAPI, workload
from tests.support.prometheus import find_binary
from tests.support.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

SLA_DEV: list[str] = [sys.executable, "-m", "sla.cli", "dev"]
"""How ``sla dev`` is started: the installed library, as ``.venv/bin/sla dev``."""

MINUTE_SECONDS: Final = 5
SCRAPE_SECONDS: Final = 2
RATE: Final = 20.0
LOAD_SECONDS: Final = 600.0
"""Longer than the test may run; the load stops by itself even if teardown fails."""

FAILURE: Final = {"error_ratio": 0.15, "slow_ratio": 0.15, "latency_seconds": 0.5}
"""Burn rate 15 on both SLOs (objective 99 %): the 2m/1m ×5 page row fires about
40 s into the failure; over the 1h window a failure of two minutes spends
15 × 2 / 60 = half of the budget, leaving it above the lift level of 25 %."""

START_SECONDS: Final = 90.0
HEALTHY_SECONDS: Final = 90.0
FREEZE_SECONDS: Final = 180.0
"""The page fires ~40 s in; the next whole minute after it is evaluated, decided
and enforced: at most about two minutes, with margin for a loaded machine."""
SPEND_SECONDS: Final = 90.0
"""After the freeze, until the other SLO's figures show the failure too: its alert,
or at the latest the next minute's tick."""
LIFT_SECONDS: Final = 240.0
"""The short window clears ~40 s after recovery; then two recovered minutes."""
STOP_SECONDS: Final = 30.0

POLICY: Final = f"{DEMO_NAMESPACE}/demo-freeze"
SLOS: Final = (f"{DEMO_NAMESPACE}/demo-availability", f"{DEMO_NAMESPACE}/demo-latency")
FROZEN: Final = "sla.dev/frozen"
SCOPED: Final = ("web", "worker")
"""Deployments labelled app=demo, in the policy's namespace: the freeze's scope."""
UNSCOPED: Final = "billing"

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 1.0
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            value = probe()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", flush=True)


# -- the database --------------------------------------------------------------------


async def _rows(url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


# -- the world around sla dev ---------------------------------------------------------


@dataclass
class World:
    """Everything the test started, and how to read it."""

    state_dir: Path
    database: str
    kube: KubeAPI
    service: DemoService
    prometheus: PrometheusProcess
    alertmanager: AlertmanagerProcess
    dev: subprocess.Popen[bytes] | None = None
    functions: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(
        default_factory=lambda: httpx.Client(trust_env=False, timeout=10)
    )

    # sla dev's own output and the functions' logs

    def dev_output(self) -> str:
        return (self.state_dir.parent / "sla-dev.out").read_text(errors="replace")

    def diagnostics(self) -> str:
        parts = [f"--- sla dev output\n{_tail(self.dev_output(), 40)}"]
        for path in sorted((self.state_dir / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n{_tail(path.read_text(errors='replace'))}")
        parts.append(f"--- prometheus\n{self.prometheus.log_tail(15)}")
        parts.append(f"--- alertmanager\n{self.alertmanager.log_tail(15)}")
        dead = self.state_dir / "dead-letters.jsonl"
        if dead.exists():
            parts.append(f"--- dead letters\n{_tail(dead.read_text(), 10)}")
        return "\n".join(parts)

    # Prometheus and Alertmanager

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.prometheus.url}/api/v1/alerts").json()
        return list(answer["data"]["alerts"])

    def firing_pages(self) -> set[str]:
        return {
            f"{alert['labels']['namespace']}/{alert['labels']['slo']}"
            for alert in self.prometheus_alerts()
            if alert["labels"].get("severity") == "page" and alert["state"] == "firing"
        }

    def alertmanager_metric(self, name: str) -> float:
        text = self.http.get(f"{self.alertmanager.url}/metrics").text
        pattern = re.compile(rf'^{name}\{{integration="webhook"\}} (\S+)$', re.M)
        match = pattern.search(text)
        return float(match.group(1)) if match else 0.0

    # budget-api

    def api(self, path: str) -> Any:
        answer = self.http.get(self.functions["budget-api"] + path)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code}"
        return answer.json()

    def budgets(self) -> dict[str, dict[str, Any]]:
        page = self.api(f"/slos?namespace={DEMO_NAMESPACE}")
        return {item["slo"]: item for item in page["items"]}

    # the cluster double

    def frozen(self) -> dict[str, bool]:
        return {name: FROZEN in self._annotations(name) for name in (*SCOPED, UNSCOPED)}

    def _annotations(self, name: str) -> dict[str, str]:
        obj = self.kube.get("Deployment", DEMO_NAMESPACE, name)
        assert obj is not None
        return dict(obj["metadata"].get("annotations") or {})

    # records

    def topic(self, name: str) -> list[dict[str, Any]]:
        path = self.state_dir / "topics" / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return asyncio.run(_rows(self.database, query, *args))


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _seed_cluster(kube: KubeAPI) -> None:
    for name in SCOPED:
        kube.seed(workload("Deployment", name, DEMO_NAMESPACE, labels={"app": "demo"}))
    kube.seed(
        workload("Deployment", UNSCOPED, DEMO_NAMESPACE, labels={"app": "billing"})
    )


def _kubeconfig(path: Path, url: str) -> Path:
    # JSON is YAML; no user credentials: the double lets anonymous requests in.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [
            {"name": "double", "context": {"cluster": "double", "user": "tester"}}
        ],
        "current-context": "double",
    }
    path.write_text(json.dumps(config))
    return path


def _rules(specs: Path, out: Path) -> Path:
    """The rule file exactly as ``sla rules`` writes it."""
    command = [sys.executable, "-m", "sla.cli", "rules", str(specs), "-o", "rules"]
    command += ["--scrape-interval", str(SCRAPE_SECONDS)]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    out.write_text(finished.stdout)
    return out


def _start_dev(
    world: World, *, specs: Path, kubeconfig: Path, webhook_port: int
) -> None:
    broker_port = free_port()
    command = [
        *SLA_DEV,
        "--prometheus", world.prometheus.url,
        "--slos", str(specs),
        "--minute-seconds", str(MINUTE_SECONDS),
        "--state-dir", str(world.state_dir),
        "--kubeconfig", str(kubeconfig),
        "--broker-port", str(broker_port),
        "--alertmanager-port", str(webhook_port),
    ]  # fmt: skip
    environment = {
        **os.environ,
        "SLA_DATABASE_URL": world.database,
        # The functions' window floor: two scrapes, under the 1m short windows.
        "SLA_SCRAPE_INTERVAL_SECONDS": str(SCRAPE_SECONDS),
        # Wide enough that the table of URLs is printed on one line per row.
        "COLUMNS": "200",
    }
    for name in ("SLA_REDIS_URL", "SLA_KUBECONFIG", "SLA_ENFORCEMENT"):
        environment.pop(name, None)
    output = world.state_dir.parent / "sla-dev.out"
    with output.open("wb") as stream:
        world.dev = subprocess.Popen(
            command,
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            # Its own process group: a teardown that must kill reaches the functions.
            start_new_session=True,
        )
    world.functions = wait_for(
        lambda: _announced(world), timeout=START_SECONDS, what="sla dev to start"
    )
    assert world.functions["webhook-intake"] == f"http://127.0.0.1:{webhook_port}"


def _announced(world: World) -> dict[str, str] | None:
    assert world.dev is not None
    if world.dev.poll() is not None:
        raise AssertionError(f"sla dev exited ({world.dev.returncode})")
    found = dict(
        re.findall(r"│ ([a-z-]+)\s+│ (http://127\.0\.0\.1:\d+)\s", world.dev_output())
    )
    return found if "budget-api" in found and "webhook-intake" in found else None


def _stop_dev(world: World) -> None:
    process = world.dev
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)


@pytest.fixture
def world(tmp_path: Path, kube_api: KubeAPI, own_database_url: str) -> Iterator[World]:
    for binary in ("prometheus", "promtool"):
        find_binary(binary)
    _seed_cluster(kube_api)
    specs = tmp_path / "slos.yaml"
    specs.write_text(write_demo_specs())
    rules = _rules(specs, tmp_path / "rules.yml")
    state_dir = tmp_path / "state"
    # The token sla dev will read; Alertmanager reads it as credentials_file.
    ensure_token(state_dir / "webhook-token")
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    webhook_port = free_port()
    with contextlib.ExitStack() as stack:
        service = stack.enter_context(DemoService())
        stack.enter_context(
            LoadGenerator(service.url + "/", rate=RATE, duration=LOAD_SECONDS)
        )
        alertmanager = AlertmanagerProcess.start(
            tmp_path / "alertmanager",
            webhook_url=f"http://127.0.0.1:{webhook_port}/",
            credentials_file=state_dir / "webhook-token",
        )
        stack.callback(alertmanager.stop)
        prometheus = PrometheusProcess.start(
            tmp_path / "prometheus",
            targets={DEMO_JOB: [service.target]},
            rule_files=[rules],
            alertmanager=alertmanager.url,
            scrape_interval=SCRAPE_SECONDS,
            history=history_text(
                job=DEMO_JOB, instance=service.target, end=time.time(), rate=RATE
            ),
        )
        stack.callback(prometheus.stop)
        world = World(
            state_dir=state_dir,
            database=own_database_url,
            kube=kube_api,
            service=service,
            prometheus=prometheus,
            alertmanager=alertmanager,
        )
        stack.callback(world.http.close)
        stack.callback(_stop_dev, world)
        # Alertmanager's webhook already names this port: sla dev takes it.
        _start_dev(world, specs=specs, kubeconfig=kubeconfig, webhook_port=webhook_port)
        yield world


@contextlib.contextmanager
def explained(world: World) -> Iterator[None]:
    """On failure, print what the processes logged (pytest shows it)."""
    try:
        yield
    except BaseException:
        print(world.diagnostics())
        raise


# -- the story ------------------------------------------------------------------------


def test_failure_freezes_the_service_and_recovery_lifts_it(world: World) -> None:
    started = time.monotonic()
    with explained(world):
        baseline = _healthy(world)
        log(f"healthy: {_shown(baseline)}")

        world.http.post(f"{world.service.url}/control", json=FAILURE)
        failed_at = time.monotonic()
        log("service failing")
        frozen = _frozen(world)
        log(f"frozen {time.monotonic() - failed_at:.0f}s into the failure: {frozen}")
        during = _spent(world, baseline=baseline)
        alert_minute = _alert_was_handled(world)

        world.http.post(f"{world.service.url}/control", json={})
        recovered_at = time.monotonic()
        log("service recovered")
        _lifted(world)
        log(f"lifted {time.monotonic() - recovered_at:.0f}s after recovery")

        _check_budgets(world, baseline=baseline, during=during)
        _check_records(world, alert_minute=alert_minute)
        _check_api(world)
        _check_delivery(world)
    log(f"story told in {time.monotonic() - started:.0f}s")


def _shown(budgets: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{slo} {item['status']} {item['remaining']:.3f}"
        for slo, item in sorted(budgets.items())
        if item["remaining"] is not None
    )


def _healthy(world: World) -> dict[str, dict[str, Any]]:
    def evaluated() -> dict[str, dict[str, Any]] | None:
        budgets = world.budgets()
        ready = all(
            slo in budgets and budgets[slo]["status"] == "healthy" for slo in SLOS
        )
        return budgets if ready else None

    budgets = wait_for(evaluated, timeout=HEALTHY_SECONDS, what="healthy budgets")
    for slo in SLOS:
        # An hour of history, all good: the budget is whole.
        assert budgets[slo]["remaining"] > 0.99, budgets[slo]
    assert world.frozen() == dict.fromkeys((*SCOPED, UNSCOPED), False)
    return budgets


def _frozen(world: World) -> bool:
    expected = {**dict.fromkeys(SCOPED, True), UNSCOPED: False}
    frozen = wait_for(
        lambda: world.frozen() == expected,
        timeout=FREEZE_SECONDS,
        what="the freeze of the app=demo Deployments",
    )
    # Prometheus' own burn-rate alerts (sla rules) fire for both SLOs.
    assert world.firing_pages() == set(SLOS), world.prometheus_alerts()
    for name in SCOPED:
        annotations = world._annotations(name)
        assert annotations[FROZEN] == "true"
        assert annotations["sla.dev/frozen-by"] == POLICY
        assert annotations["sla.dev/frozen-since"]
        assert annotations["sla.dev/freeze-reason"]
    return frozen


def _alert_was_handled(world: World) -> datetime:
    """Alertmanager's webhook reached webhook-intake, whose alert.received was
    handled by sli-calculator; a snapshot exists at the receipt minute."""

    def handled() -> list[dict[str, Any]]:
        return world.rows(
            "SELECT source, id, processed_at FROM processed_events "
            "WHERE id LIKE 'alert/%/firing/%' AND processed_at IS NOT NULL "
            "ORDER BY processed_at"
        )

    rows = wait_for(handled, timeout=60, what="an alert.received handled")
    received = rows[0]["processed_at"]
    minute = received.replace(second=0, microsecond=0)

    def evaluated() -> set[str]:
        snapshots = world.rows(
            "SELECT slo FROM budget_snapshots WHERE evaluated_at = $1", minute
        )
        return {row["slo"] for row in snapshots}

    # The alert's own evaluation stored its SLO's snapshot before the alert was
    # recorded as handled; the others come with the minute's tick, which may
    # follow it when the alert arrives in the minute's first seconds.
    assert evaluated() & set(SLOS), minute
    wait_for(
        lambda: evaluated() >= set(SLOS),
        timeout=30,
        what=f"a snapshot of every SLO at {minute:%H:%M}",
    )
    assert world.alertmanager_metric("alertmanager_notifications_total") >= 1
    return minute


def _spent(
    world: World, *, baseline: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The budgets once every SLO shows the failure. One SLO's burn freezes the
    scope; the other's alert may be re-evaluated a moment later, or at the tick."""

    def every_slo_spent() -> dict[str, dict[str, Any]] | None:
        budgets = world.budgets()
        spent = all(
            budgets[slo]["remaining"] < baseline[slo]["remaining"] - 0.05
            for slo in SLOS
        )
        return budgets if spent else None

    return wait_for(
        every_slo_spent, timeout=SPEND_SECONDS, what="every SLO to spend budget"
    )


def _lifted(world: World) -> None:
    wait_for(
        lambda: world.frozen() == dict.fromkeys((*SCOPED, UNSCOPED), False),
        timeout=LIFT_SECONDS,
        what="the freeze to be lifted",
    )
    for name in SCOPED:
        leftovers = [k for k in world._annotations(name) if k.startswith("sla.dev/")]
        assert leftovers == [], f"{name} keeps {leftovers}"
    assert world.firing_pages() == set()


def _check_budgets(
    world: World,
    *,
    baseline: dict[str, dict[str, Any]],
    during: dict[str, dict[str, Any]],
) -> None:
    after = world.budgets()
    for slo in SLOS:
        # The failure spent budget, but not so much that the lift level (25 %)
        # was out of reach.
        assert during[slo]["remaining"] < baseline[slo]["remaining"] - 0.05
        assert 0.25 < after[slo]["remaining"] < baseline[slo]["remaining"]
        namespace, name = slo.split("/")
        history = world.api(f"/slos/{namespace}/{name}/history")
        statuses = {point["status"] for point in history["points"]}
        assert {"healthy", "critical"} <= statuses, statuses


def _check_records(world: World, *, alert_minute: datetime) -> None:
    audit = world.api(f"/audit?subject={POLICY}&limit=1000")["entries"]
    outcomes = [entry["outcome"] for entry in audit]
    assert any("freeze" in outcome for outcome in outcomes), outcomes
    assert any("lift" in outcome for outcome in outcomes), outcomes

    events = freeze_events(world)
    assert sorted(events) == sorted(f"dev.sla.freeze.{kind}" for kind in FREEZE_STORY)
    assert events["dev.sla.freeze.requested"]["policy"] == POLICY
    for kind, outcome in (("applied", "applied"), ("released", "released")):
        objects = events[f"dev.sla.freeze.{kind}"]["objects"]
        assert sorted((o["name"], o["outcome"]) for o in objects) == [
            (name, outcome) for name in SCOPED
        ]

    # freeze-enforcer records what it did as it publishes it.
    stored = {row["id"] for row in world.rows("SELECT id FROM freeze_events")}
    enforced = {
        event["attributes"]["id"]
        for event in world.topic("sla.freeze.events")
        if event["attributes"]["source"] == "/sla/freeze-enforcer"
    }
    assert stored == enforced
    budgets = world.topic("sla.budgets")
    minutes = {event["data"]["evaluated_at"] for event in budgets}
    assert alert_minute.strftime("%Y-%m-%dT%H:%M:%SZ") in minutes


FREEZE_STORY: Final = ("requested", "applied", "lifted", "released")


def freeze_events(world: World) -> dict[str, dict[str, Any]]:
    """The data of each freeze event type, checking that the topic holds one
    event per type, perhaps in several identical copies.

    Under ``--minute-seconds`` every tick of a real minute evaluates that same
    minute again: the same budget.calculated (same id) reaches policy-evaluator
    again, which answers with its stored reply, and the events of that reply are
    posted again with their ids, as after any redelivery. A copy is the same
    fact with the same id and the same data; a second decision would be a
    second id.
    """
    by_id: dict[str, list[dict[str, Any]]] = {}
    for event in world.topic("sla.freeze.events"):
        by_id.setdefault(event["attributes"]["id"], []).append(event)
    by_type: dict[str, dict[str, Any]] = {}
    for event_id, copies in by_id.items():
        first = copies[0]
        for copy in copies[1:]:
            assert copy["attributes"]["type"] == first["attributes"]["type"]
            assert copy["data"] == first["data"], f"{event_id} differs in a copy"
        kind = first["attributes"]["type"]
        assert kind not in by_type, f"two {kind} events: {event_id}"
        by_type[kind] = first["data"]
    return by_type


def _check_api(world: World) -> None:
    freezes = world.api(f"/freezes?namespace={DEMO_NAMESPACE}")
    assert freezes["active"] == []
    assert [view["policy"] for view in freezes["recent"]] == [POLICY]
    assert freezes["recent"][0]["state"] == "lifted"

    metrics = _metrics(world.http.get(world.functions["budget-api"] + "/metrics").text)
    policy = (("namespace", DEMO_NAMESPACE), ("policy", POLICY))
    assert metrics[("sla_freezes_active", policy)] == 0
    assert metrics[("sla_freezes_activated_total", policy)] == 1
    assert metrics[("sla_freezes_resolved_total", policy)] == 1
    for slo in SLOS:
        key = (("namespace", DEMO_NAMESPACE), ("slo", slo))
        assert 25 < metrics[("sla_budget_remaining_percent", key)] < 100
        # Recovered: no page row fires (a ticket row may still, for a while).
        assert metrics[("sla_budget_status", (*key, ("status", "critical")))] == 0


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _check_delivery(world: World) -> None:
    dead = world.state_dir / "dead-letters.jsonl"
    assert not dead.exists() or dead.read_text() == "", dead.read_text()

    # Every event handled once: no (source, id) twice, no claim abandoned (a
    # claim still running now is work in flight: the ticks go on).
    rows = world.rows("SELECT source, id FROM processed_events")
    keys = [(row["source"], row["id"]) for row in rows]
    assert len(keys) == len(set(keys))
    abandoned = world.rows(
        "SELECT source, id FROM processed_events "
        "WHERE processed_at IS NULL AND claimed_until < now()"
    )
    assert abandoned == []
    handled = {row["id"] for row in rows}
    for event in world.topic("sla.freeze.events"):
        attributes = event["attributes"]
        if attributes["type"] in ("dev.sla.freeze.requested", "dev.sla.freeze.lifted"):
            # freeze-enforcer took it: nothing lost between the two functions.
            assert attributes["id"] in handled, attributes
    # Both ends of the page alerts reached sli-calculator through the webhook.
    statuses = {key.split("/")[2] for key in handled if key.startswith("alert/")}
    assert statuses == {"firing", "resolved"}, statuses

    # Alertmanager delivered every notification (firing and resolved) at once.
    assert world.alertmanager_metric("alertmanager_notifications_failed_total") == 0
    assert world.alertmanager_metric("alertmanager_notifications_total") >= 2
