"""Shards, evaluation minutes and the SLOs an alert names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sla.model.slo import SLODefinition
from sla.services.sharding import (
    alert_slo_keys,
    evaluation_minute,
    plan_shards,
    shard_event_id,
    with_components,
)

RATIO = {
    "ratio": {
        "bad": {"metric": 'x_total{code="500"}'},
        "total": {"metric": "x_total"},
    }
}


def slo(name: str, indicator: dict[str, Any] | None = None) -> SLODefinition:
    return SLODefinition.model_validate(
        {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "service": "s",
                "objective": 99,
                "window": "7d",
                "indicator": indicator or RATIO,
            },
        }
    )


def composite(name: str, *parts: str) -> SLODefinition:
    return slo(name, {"composite": {"components": [{"slo": p} for p in parts]}})


def test_the_evaluation_minute_rounds_down() -> None:
    moment = datetime(2026, 1, 3, 12, 34, 59, 999_999, tzinfo=UTC)

    assert evaluation_minute(moment) == datetime(2026, 1, 3, 12, 34, tzinfo=UTC)


def test_shard_ids_depend_only_on_the_tick_and_the_index() -> None:
    at = datetime(2026, 1, 3, 12, 34, tzinfo=UTC)

    assert (
        shard_event_id(at, shard=0, shards=3)
        == "tick/2026-01-03T12:34:00Z/shard-1-of-3"
    )


def test_five_slos_in_shards_of_two_make_three_shards_in_key_order() -> None:
    slos = [slo(name) for name in ("e", "d", "c", "b", "a")]

    shards = plan_shards(slos, size=2)

    assert shards == [["shop/a", "shop/b"], ["shop/c", "shop/d"], ["shop/e"]]


def test_a_composite_shares_its_shard_with_its_components() -> None:
    """a, b, z alone; all = b + z: b and z must go with all, though keys part them."""
    slos = [slo("a"), slo("b"), slo("z"), composite("all", "b", "z")]

    shards = plan_shards(slos, size=2)

    together = next(s for s in shards if "shop/all" in s)
    assert set(together) == {"shop/all", "shop/b", "shop/z"}
    assert sorted(key for s in shards for key in s) == sorted(x.key for x in slos)


def test_components_are_added_to_the_slos_named() -> None:
    catalogue = {x.key: x for x in (slo("b"), slo("z"), composite("all", "b", "z"))}

    chosen = with_components(["shop/all", "shop/unknown"], catalogue)

    assert [x.key for x in chosen] == ["shop/all", "shop/b", "shop/z"]


def test_alert_labels_name_slos_in_several_ways() -> None:
    labels = {"namespace": "shop", "slo_name": "api", "sloth_slo": "web", "slo": "x/y"}

    keys = alert_slo_keys(labels, named="shop/named")

    assert keys == ["shop/named", "x/y", "shop/web", "shop/api"]


def test_an_alert_name_without_namespace_names_nothing() -> None:
    assert alert_slo_keys({"slo_name": "api"}, named=None) == []
