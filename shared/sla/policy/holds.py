"""What a freeze writes on an object, what it records first, and how it is undone.

Pure functions over objects as the API's JSON. Every mode writes the freeze
annotations (``sla.dev/frozen``, ``-by``, ``-since``, ``freeze-reason``) so a
frozen object says so whatever the mode; ``flux`` also sets ``spec.suspend`` and
``argocd`` adds a deny sync window to the Application's AppProject (see
:func:`freeze_window`).

The state recorded before the first freeze holds exactly the fields a freeze
writes (absent ones as absent), and restoring writes back exactly those fields, so
lifting removes what the system wrote and nothing a person set by hand.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from croniter import croniter

from sla.model.policy import MODE_KINDS

FROZEN: Final = "sla.dev/frozen"
FROZEN_BY: Final = "sla.dev/frozen-by"
FROZEN_SINCE: Final = "sla.dev/frozen-since"
FREEZE_REASON: Final = "sla.dev/freeze-reason"
FREEZE_EXEMPT: Final = "sla.dev/freeze-exempt"
FREEZE_ANNOTATIONS: Final = (FROZEN, FROZEN_BY, FROZEN_SINCE, FREEZE_REASON)

ARGO_REFRESH: Final = "argocd.argoproj.io/refresh"
FLUX_PARENT_NAME: Final = "kustomize.toolkit.fluxcd.io/name"
FLUX_PARENT_NAMESPACE: Final = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_SYSTEM: Final = "flux-system"

# A deny window that is always open: it starts every minute and lasts an hour, so
# some start is always within the last hour. Argo CD evaluates windows in the
# window's time zone; UTC keeps daylight saving out of it.
WINDOW_SCHEDULE: Final = "* * * * *"
WINDOW_DURATION: Final = "1h"
WINDOW_TIME_ZONE: Final = "UTC"
WINDOW_MARK: Final = "sla.dev freeze of application"

# Argo CD parses window durations with Go's time.ParseDuration.
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")

# Flux parents above this depth mean a cycle or a mistake, not a real tree.
MAX_FLUX_DEPTH: Final = 8

JsonObject = dict[str, Any]


def mode_of(kind: str) -> str:
    """The enforcement mode that holds ``kind`` (each kind has exactly one)."""
    return next(mode for mode, kinds in MODE_KINDS.items() if kind in kinds)


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def is_exempt(obj: Mapping[str, Any]) -> bool:
    """Carries ``sla.dev/freeze-exempt`` (any value but "false")."""
    value = annotations_of(obj).get(FREEZE_EXEMPT)
    return value is not None and value.strip().lower() != "false"


def prior_state(obj: Mapping[str, Any]) -> JsonObject:
    """The fields a freeze will write, as they are now; absent ones left out."""
    annotations = annotations_of(obj)
    prior: JsonObject = {
        "annotations": {
            k: annotations[k] for k in FREEZE_ANNOTATIONS if k in annotations
        }
    }
    spec = obj.get("spec") or {}
    if mode_of(obj["kind"]) == "flux" and "suspend" in spec:
        prior["suspend"] = spec["suspend"]
    return prior


def freeze_patch(
    obj: Mapping[str, Any],
    *,
    holders: Iterable[str],
    since: datetime,
    reason: str,
) -> JsonObject:
    """The merge patch that freezes ``obj`` for every holder."""
    annotations = {
        FROZEN: "true",
        FROZEN_BY: ",".join(sorted(set(holders))),
        FROZEN_SINCE: since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        FREEZE_REASON: reason,
    }
    patch: JsonObject = {"metadata": {"annotations": annotations}}
    if mode_of(obj["kind"]) == "flux":
        patch["spec"] = {"suspend": True}
    return patch


def holders_patch(holders: Iterable[str]) -> JsonObject:
    """The merge patch that names the holders left after one let go."""
    frozen_by = ",".join(sorted(set(holders)))
    return {"metadata": {"annotations": {FROZEN_BY: frozen_by}}}


def restore_patch(obj: Mapping[str, Any], prior: Mapping[str, Any]) -> JsonObject:
    """The merge patch that puts back what the first freeze found.

    A field that was absent is deleted (None in a merge patch); an Argo CD
    Application is also asked to refresh, so it notices its window is gone.
    """
    before = prior.get("annotations") or {}
    annotations: dict[str, str | None] = {k: before.get(k) for k in FREEZE_ANNOTATIONS}
    mode = mode_of(obj["kind"])
    if mode == "argocd":
        annotations[ARGO_REFRESH] = "normal"
    patch: JsonObject = {"metadata": {"annotations": annotations}}
    if mode == "flux":
        patch["spec"] = {"suspend": prior.get("suspend")}
    return patch


def merged(obj: Mapping[str, Any], patch: Mapping[str, Any]) -> JsonObject:
    """``obj`` with a JSON merge patch (RFC 7386) applied."""
    result = copy.deepcopy(dict(obj))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            current = result.get(key)
            base = current if isinstance(current, Mapping) else {}
            result[key] = merged(base, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def changes(obj: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether applying ``patch`` would change ``obj``; unchanged means no write."""
    return merged(obj, patch) != dict(obj)


def flux_parent(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) of the Kustomization that applies ``obj``, if any."""
    labels = labels_of(obj)
    name = labels.get(FLUX_PARENT_NAME)
    namespace = labels.get(FLUX_PARENT_NAMESPACE)
    return (namespace, name) if name and namespace else None


def freeze_window(application: str) -> JsonObject:
    """The deny sync window that holds one Application; checked before use."""
    window = {
        "kind": "deny",
        "schedule": WINDOW_SCHEDULE,
        "duration": WINDOW_DURATION,
        "timeZone": WINDOW_TIME_ZONE,
        "applications": [application],
        "manualSync": False,
        "description": f"{WINDOW_MARK} {application}",
    }
    check_window(window)
    return window


def check_window(window: Mapping[str, Any]) -> None:
    """ValueError unless the schedule is a valid cron and the duration Go's."""
    if not croniter.is_valid(window["schedule"]):
        raise ValueError(f"sync window schedule {window['schedule']!r} is not cron")
    if not _GO_DURATION.match(window["duration"]):
        raise ValueError(f"sync window duration {window['duration']!r} is not valid")


def is_our_window(window: Mapping[str, Any], application: str) -> bool:
    return window.get("kind") == "deny" and window.get("description") == (
        f"{WINDOW_MARK} {application}"
    )


def with_window(windows: list[JsonObject], application: str) -> list[JsonObject] | None:
    """Every window plus ours, or None when ours is already there."""
    if any(is_our_window(w, application) for w in windows):
        return None
    return [*windows, freeze_window(application)]


def without_window(
    windows: list[JsonObject], application: str
) -> list[JsonObject] | None:
    """Every window but ours, or None when ours is not there."""
    kept = [w for w in windows if not is_our_window(w, application)]
    return None if len(kept) == len(windows) else kept
