"""What sli-calculator evaluates, when, and in how many pieces (no I/O).

- Evaluation time: a tick's ``time`` or an alert's receipt, rounded down to the
  minute (DESIGN.md, "Evaluation time"), so a redelivered tick gives the same
  snapshot ids.
- Shards: more SLOs than the shard size are split into shards evaluated by separate
  ``dev.sla.slo.evaluate`` events. A composite SLO is measured from its components
  in the same evaluation, so a composite and its components (and composites sharing
  a component) always land in one shard, even if that shard grows past the size.
- Alerts name their SLO in a label: ``slo`` (``namespace/name``, or a name with a
  ``namespace`` label), ``sloth_slo`` or ``slo_name`` with ``namespace``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sla.model.slo import SLODefinition

ALERT_SLO_LABELS = ("slo", "sloth_slo", "slo_name")
"""Labels that name an SLO, in the order they are trusted."""


def evaluation_minute(moment: datetime) -> datetime:
    """``moment`` rounded down to the whole minute."""
    return moment.replace(second=0, microsecond=0)


def shard_event_id(evaluated_at: datetime, *, shard: int, shards: int) -> str:
    """Deterministic: a redelivered tick fans out into the same shard ids."""
    stamp = evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"tick/{stamp}/shard-{shard + 1}-of-{shards}"


def plan_shards(slos: Sequence[SLODefinition], *, size: int) -> list[list[str]]:
    """SLO keys in shards of about ``size``, composites with their components.

    Keys are sorted first, so the same catalogue always gives the same shards.
    """
    groups = _composite_groups(slos)
    shards: list[list[str]] = []
    current: list[str] = []
    for group in groups:
        if current and len(current) + len(group) > size:
            shards.append(current)
            current = []
        current.extend(group)
    if current:
        shards.append(current)
    return shards


def with_components(
    wanted: Iterable[str], catalogue: Mapping[str, SLODefinition]
) -> list[SLODefinition]:
    """The SLOs named, plus the components their composites are measured from."""
    chosen: dict[str, SLODefinition] = {}
    pending = [key for key in wanted if key in catalogue]
    while pending:
        key = pending.pop()
        if key in chosen:
            continue
        slo = catalogue[key]
        chosen[key] = slo
        pending.extend(
            part
            for part in _components(slo)
            if part in catalogue and part not in chosen
        )
    return [chosen[key] for key in sorted(chosen)]


def alert_slo_keys(labels: Mapping[str, str], *, named: str | None) -> list[str]:
    """Catalogue keys an alert may refer to; unknown ones are dropped later."""
    keys: list[str] = []
    if named:
        keys.append(named)
    namespace = labels.get("namespace", "")
    for label in ALERT_SLO_LABELS:
        value = labels.get(label, "").strip()
        if not value:
            continue
        if "/" in value:
            keys.append(value)
        elif namespace:
            keys.append(f"{namespace}/{value}")
    return list(dict.fromkeys(keys))


def _components(slo: SLODefinition) -> list[str]:
    composite = slo.spec.indicator.composite
    if composite is None:
        return []
    namespace = slo.metadata.namespace
    return [f"{namespace}/{component.slo}" for component in composite.components]


def _composite_groups(slos: Sequence[SLODefinition]) -> list[list[str]]:
    """Keys grouped so that every composite shares a group with its components."""
    parent: dict[str, str] = {slo.key: slo.key for slo in slos}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for slo in slos:
        for part in _components(slo):
            if part in parent:
                parent[root(part)] = root(slo.key)
    groups: dict[str, list[str]] = {}
    for key in sorted(parent):
        groups.setdefault(root(key), []).append(key)
    return sorted(groups.values())
