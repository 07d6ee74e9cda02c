"""The manifests keep the design's contracts: functions, events, settings, rights.

Expected values are written out here, transcribed from the design; one test checks
the transcription of the Settings table against the design document itself.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.manifests import DESIGN, Document, by_name, of_kind, render

FUNCTIONS = (
    "sli-calculator",
    "policy-evaluator",
    "freeze-enforcer",
    "webhook-intake",
    "slo-catalog",
    "budget-api",
)
PUBLIC = {"webhook-intake", "budget-api"}
CLUSTER_LOCAL = set(FUNCTIONS) - PUBLIC
EMITTERS = {
    "sli-calculator",
    "policy-evaluator",
    "freeze-enforcer",
    "webhook-intake",
    # Posts the freeze decisions of manual overrides (no event to reply to).
    "budget-api",
}

SETTINGS = frozenset(
    {
        "SLA_DATABASE_URL",
        "SLA_DATABASE_POOL_SIZE",
        "SLA_REDIS_URL",
        "SLA_CACHE_TTL_SECONDS",
        "SLA_PROMETHEUS_URL",
        "SLA_PROMETHEUS_TOKEN",
        "SLA_PROMETHEUS_TOKEN_FILE",
        "SLA_PROMETHEUS_TIMEOUT_SECONDS",
        "SLA_SCRAPE_INTERVAL_SECONDS",
        "SLA_CHUNK_SECONDS",
        "SLA_CHUNK_SETTLE_SECONDS",
        "SLA_EVALUATION_SHARD_SIZE",
        "SLA_EVALUATION_CONCURRENCY",
        "SLA_SNAPSHOT_RETENTION_DAYS",
        "SLA_WEBHOOK_TOKEN",
        "SLA_WEBHOOK_TOKEN_FILE",
        "SLA_WEBHOOK_BASIC_AUTH_FILE",
        "SLA_WEBHOOK_AUTH",
        "SLA_WEBHOOK_MAX_BODY_BYTES",
        "SLA_WEBHOOK_MAX_ALERTS",
        "SLA_API_TOKEN",
        "SLA_API_TOKEN_FILE",
        "SLA_API_READ_AUTH",
        "SLA_ENFORCEMENT",
        "SLA_ENFORCEMENT_MAX_OBJECTS",
        "SLA_ALLOW_CROSS_NAMESPACE",
        "SLA_STATUS_WRITE_MIN_SECONDS",
        "SLA_LOG_LEVEL",
    }
)
FROM_KNATIVE = frozenset({"K_SINK", "PORT"})
SECRET_SETTINGS = frozenset(
    {
        "SLA_DATABASE_URL",
        "SLA_REDIS_URL",
        "SLA_PROMETHEUS_TOKEN",
        "SLA_WEBHOOK_TOKEN",
        "SLA_API_TOKEN",
    }
)

NAMESPACE = "sla-system"
TICK = f"/apis/v1/namespaces/{NAMESPACE}/pingsources/sla-tick"
RELIST = f"/apis/v1/namespaces/{NAMESPACE}/pingsources/sla-relist"
KAFKA_DEPLOYMENTS = (
    f"/apis/v1/namespaces/{NAMESPACE}/kafkasources/sla-deployments#ci.deployments"
)

# (type, source or None for any, consuming function): the catalogue's subscriptions.
SUBSCRIPTIONS = {
    ("dev.knative.sources.ping", TICK, "sli-calculator"),
    ("dev.knative.sources.ping", RELIST, "slo-catalog"),
    ("dev.sla.slo.evaluate", None, "sli-calculator"),
    ("dev.sla.alert.received", None, "sli-calculator"),
    ("dev.sla.budget.calculated", None, "policy-evaluator"),
    ("dev.sla.budget.calculated", None, "slo-catalog"),
    ("dev.sla.freeze.requested", None, "freeze-enforcer"),
    ("dev.sla.freeze.lifted", None, "freeze-enforcer"),
    ("dev.sla.deployment.started", None, "policy-evaluator"),
    ("dev.knative.kafka.event", KAFKA_DEPLOYMENTS, "policy-evaluator"),
    ("dev.knative.apiserver.resource.add", None, "slo-catalog"),
    ("dev.knative.apiserver.resource.update", None, "slo-catalog"),
    ("dev.knative.apiserver.resource.delete", None, "slo-catalog"),
}

TOPICS = {
    "dev.sla.budget.calculated": "sla.budgets",
    "dev.sla.freeze.requested": "sla.freeze.events",
    "dev.sla.freeze.lifted": "sla.freeze.events",
    "dev.sla.freeze.applied": "sla.freeze.events",
    "dev.sla.freeze.released": "sla.freeze.events",
    "dev.sla.freeze.failed": "sla.freeze.events",
    "dev.sla.slo.violated": "sla.violations",
    "dev.sla.freeze.breached": "sla.violations",
}

WORKLOAD_VERBS = {"get", "list", "patch", "update"}
WORKLOADS = {
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("argoproj.io", "rollouts"),
    ("argoproj.io", "applications"),
    ("argoproj.io", "appprojects"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    ("helm.toolkit.fluxcd.io", "helmreleases"),
}
CATALOGUE_RIGHTS = {
    ("sla.dev", resource, verb)
    for resource in ("slodefinitions", "slapolicies")
    for verb in ("get", "list", "watch")
} | {
    ("sla.dev", f"{resource}/status", verb)
    for resource in ("slodefinitions", "slapolicies")
    for verb in ("get", "update", "patch")
}

RENDERED = render(".")
SERVICES = by_name(RENDERED, "Service")


def container(name: str) -> Document:
    (only,) = SERVICES[name]["spec"]["template"]["spec"]["containers"]
    return only


def revision_spec(name: str) -> Document:
    return SERVICES[name]["spec"]["template"]["spec"]


def subscriptions(sink_kind: str) -> set[tuple[str, str | None, str]]:
    found = set()
    for trigger in of_kind(RENDERED, "Trigger"):
        ref = trigger["spec"]["subscriber"]["ref"]
        if ref["kind"] == sink_kind:
            attributes = trigger["spec"]["filter"]["attributes"]
            found.add((attributes["type"], attributes.get("source"), ref["name"]))
    return found


def rights(service_account: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) granted to a ServiceAccount by any binding."""
    roles = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in RENDERED
        if doc["kind"] in ("Role", "ClusterRole")
    }
    granted: set[tuple[str, str, str]] = set()
    for binding in RENDERED:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.get("subjects", [])
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == service_account
            for s in subjects
        ):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for rule in role["rules"]:
            granted |= {
                (group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return granted


def design_settings() -> set[str]:
    """Setting names of the design's table, ``_FILE`` variants spelt out."""
    text = DESIGN.read_text(encoding="utf-8")
    table = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        previous = ""
        for token in re.findall(r"`([A-Z_]+)`", row.split("|")[1]):
            name = previous + token if token.startswith("_") else token
            names.add(name)
            previous = name if not token.startswith("_") else previous
    return names


def test_settings_transcription_matches_the_design() -> None:
    assert design_settings() == SETTINGS | FROM_KNATIVE


def test_every_function_of_the_design_has_a_service() -> None:
    assert set(SERVICES) == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_service_runs_its_own_image_and_identity(name: str) -> None:
    spec = revision_spec(name)

    assert container(name)["image"] == f"sla-{name}"
    assert container(name)["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert spec["serviceAccountName"] == name
    assert spec["containerConcurrency"] > 0
    assert 0 < spec["timeoutSeconds"] <= 600


@pytest.mark.parametrize("name", FUNCTIONS)
def test_only_public_functions_are_reachable_from_outside(name: str) -> None:
    labels = SERVICES[name]["metadata"]["labels"]
    visibility = labels.get("networking.knative.dev/visibility")

    assert visibility == (None if name in PUBLIC else "cluster-local")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_only_webhook_intake_stays_warm(name: str) -> None:
    annotations = SERVICES[name]["spec"]["template"]["metadata"]["annotations"]
    expected = "1" if name == "webhook-intake" else "0"

    assert annotations["autoscaling.knative.dev/min-scale"] == expected
    assert int(annotations["autoscaling.knative.dev/max-scale"]) >= 1


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_runs_locked_down(name: str) -> None:
    assert container(name)["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_has_probes_and_resources(name: str) -> None:
    function = container(name)

    assert function["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert function["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    assert set(function["resources"]["requests"]) == {"cpu", "memory"}
    assert set(function["resources"]["limits"]) == {"cpu", "memory"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_service_sets_only_settings_of_the_design(name: str) -> None:
    names = {variable["name"] for variable in container(name).get("env", [])}

    assert names <= SETTINGS | FROM_KNATIVE
    assert container(name)["envFrom"] == [{"configMapRef": {"name": "sla-config"}}]


def test_config_map_holds_only_non_secret_settings() -> None:
    data = by_name(RENDERED, "ConfigMap")["sla-config"]["data"]

    assert set(data) <= SETTINGS
    assert not set(data) & SECRET_SETTINGS
    assert not any(name.endswith("_FILE") for name in data)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_credentials_come_from_secrets(name: str) -> None:
    env = {variable["name"]: variable for variable in container(name)["env"]}
    database = env["SLA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    redis = env["SLA_REDIS_URL"]["valueFrom"]["secretKeyRef"]

    assert database == {"name": "sla-database", "key": "SLA_DATABASE_URL"}
    assert redis == {"name": "sla-redis", "key": "SLA_REDIS_URL", "optional": True}


@pytest.mark.parametrize(
    ("name", "setting", "secret"),
    [
        ("webhook-intake", "SLA_WEBHOOK_TOKEN_FILE", "sla-webhook"),
        ("budget-api", "SLA_API_TOKEN_FILE", "sla-api"),
    ],
)
def test_token_file_is_a_mounted_secret(name: str, setting: str, secret: str) -> None:
    env = {variable["name"]: variable for variable in container(name)["env"]}
    path = env[setting]["value"]
    volumes = {volume["name"]: volume for volume in revision_spec(name)["volumes"]}
    (mount,) = [
        mount
        for mount in container(name)["volumeMounts"]
        if path.startswith(mount["mountPath"] + "/")
    ]
    source = volumes[mount["name"]]["secret"]
    file_name = path.removeprefix(mount["mountPath"] + "/")

    assert source["secretName"] == secret
    assert {"key": "token", "path": file_name} in source["items"]
    assert mount["readOnly"] is True


def test_every_consumed_event_type_has_a_trigger_to_its_function() -> None:
    """Exactly the catalogue's subscriptions: anything more would answer 400."""
    assert subscriptions("Service") == SUBSCRIPTIONS


def test_every_trigger_subscriber_exists() -> None:
    sinks = by_name(RENDERED, "KafkaSink")
    for trigger in of_kind(RENDERED, "Trigger"):
        ref = trigger["spec"]["subscriber"]["ref"]
        known = SERVICES if ref["kind"] == "Service" else sinks
        assert ref["name"] in known, trigger["metadata"]["name"]
        assert trigger["spec"]["broker"] in by_name(RENDERED, "Broker")


def test_events_are_copied_to_their_kafka_topics() -> None:
    sinks = by_name(RENDERED, "KafkaSink")
    copied = {
        event_type: sinks[sink]["spec"]["topic"]
        for event_type, _, sink in subscriptions("KafkaSink")
    }

    assert copied == TOPICS
    assert len(subscriptions("KafkaSink")) == len(TOPICS)


def test_trigger_sources_name_the_rendered_sources() -> None:
    """The source filters agree with where kustomize puts the sources."""
    pings = by_name(RENDERED, "PingSource")
    kafka = by_name(RENDERED, "KafkaSource")["sla-deployments"]
    (topic,) = kafka["spec"]["topics"]

    for name, source in (("sla-tick", TICK), ("sla-relist", RELIST)):
        namespace = pings[name]["metadata"]["namespace"]
        assert source == f"/apis/v1/namespaces/{namespace}/pingsources/{name}"
    namespace = kafka["metadata"]["namespace"]
    assert (
        f"/apis/v1/namespaces/{namespace}/kafkasources/sla-deployments#{topic}"
    ) == KAFKA_DEPLOYMENTS


@pytest.mark.parametrize(
    ("name", "schedule"), [("sla-tick", "* * * * *"), ("sla-relist", "*/15 * * * *")]
)
def test_ping_source_schedule_in_utc_to_the_broker(name: str, schedule: str) -> None:
    spec = by_name(RENDERED, "PingSource")[name]["spec"]

    assert spec["schedule"] == schedule
    assert spec["timezone"] == "UTC"
    assert spec["sink"]["ref"]["kind"] == "Broker"


def test_broker_is_kafka_with_retries_and_dead_letters() -> None:
    broker = by_name(RENDERED, "Broker")["sla"]
    delivery = broker["spec"]["delivery"]
    dead_letters = delivery["deadLetterSink"]["ref"]

    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == (
        "Kafka"
    )
    assert broker["spec"]["config"]["name"] == "kafka-broker-config"
    assert delivery["backoffPolicy"] == "exponential"
    assert delivery["retry"] > 0
    assert dead_letters["kind"] == "KafkaSink"
    assert dead_letters["name"] == "sla-dead-letters"
    assert dead_letters["name"] in by_name(RENDERED, "KafkaSink")


def test_kafka_address_is_filled_in_everywhere() -> None:
    config = by_name(RENDERED, "ConfigMap")["kafka-broker-config"]["data"]
    users = of_kind(RENDERED, "KafkaSink") + of_kind(RENDERED, "KafkaSource")

    for user in users:
        assert user["spec"]["bootstrapServers"] == [config["bootstrap.servers"]]


def test_apiserver_source_watches_both_kinds_for_slo_catalog() -> None:
    (source,) = of_kind(RENDERED, "ApiServerSource")
    spec = source["spec"]
    account = spec["serviceAccountName"]

    assert spec["mode"] == "Resource"
    assert spec["resources"] == [
        {"apiVersion": "sla.dev/v1alpha1", "kind": "SLODefinition"},
        {"apiVersion": "sla.dev/v1alpha1", "kind": "SLAPolicy"},
    ]
    assert account in by_name(RENDERED, "ServiceAccount")
    assert {
        ("sla.dev", "slodefinitions", "watch"),
        ("sla.dev", "slapolicies", "watch"),
    } <= (rights(account))
    assert not any(verb in ("patch", "update") for _, _, verb in rights(account))


def test_sink_bindings_give_emitters_the_broker() -> None:
    bindings = of_kind(RENDERED, "SinkBinding")
    subjects = {binding["spec"]["subject"]["name"] for binding in bindings}

    assert subjects == EMITTERS
    for binding in bindings:
        assert binding["spec"]["subject"]["kind"] == "Service"
        assert binding["spec"]["sink"]["ref"] == {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "name": "sla",
        }


def test_only_freeze_enforcer_may_change_workloads() -> None:
    expected = {
        (group, res, verb) for group, res in WORKLOADS for verb in WORKLOAD_VERBS
    }

    assert rights("freeze-enforcer") == expected
    for account in by_name(RENDERED, "ServiceAccount"):
        if account != "freeze-enforcer":
            assert not {(g, r) for g, r, _ in rights(account)} & WORKLOADS


def test_only_slo_catalog_reads_the_catalogue_and_writes_status() -> None:
    assert rights("slo-catalog") == CATALOGUE_RIGHTS
    for function in set(FUNCTIONS) - {"slo-catalog"}:
        assert not any(group == "sla.dev" for group, _, _ in rights(function))


@pytest.mark.parametrize(
    "name", ["sli-calculator", "policy-evaluator", "webhook-intake", "budget-api"]
)
def test_function_without_rights_gets_no_token(name: str) -> None:
    account = by_name(RENDERED, "ServiceAccount")[name]

    assert rights(name) == set()
    assert account["automountServiceAccountToken"] is False
    assert revision_spec(name)["automountServiceAccountToken"] is False


def test_no_role_grants_wildcards() -> None:
    for role in RENDERED:
        if role["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in role["rules"]:
            fields: list[Any] = rule["apiGroups"] + rule["resources"] + rule["verbs"]
            assert "*" not in fields, role["metadata"]["name"]


def test_network_policy_admits_only_the_platform_to_cluster_local_functions() -> None:
    (policy,) = of_kind(RENDERED, "NetworkPolicy")
    (selected,) = policy["spec"]["podSelector"]["matchExpressions"]
    (ingress,) = policy["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in ingress["from"]
    }

    assert selected["key"] == "serving.knative.dev/service"
    assert set(selected["values"]) == CLUSTER_LOCAL
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert namespaces == {"knative-eventing", "knative-serving"}
    assert "ports" not in ingress


def test_everything_namespaced_lives_in_the_system_namespace() -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for document in RENDERED:
        namespace = document["metadata"].get("namespace")
        expected = None if document["kind"] in cluster_scoped else NAMESPACE
        assert namespace == expected, document["metadata"]["name"]
