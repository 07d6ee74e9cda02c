"""A policy's scope as decisions and the store name it."""

from __future__ import annotations

from sla.model.freeze import ScopeRef
from sla.model.policy import SLAPolicy


def scope_ref(policy: SLAPolicy) -> ScopeRef:
    """The scope a policy asks for: its own namespace unless it names others.

    The key is readable and canonical (sorted namespaces and kinds, the selector
    in the API's syntax), so the same scope always has the same key and an edited
    scope a new one.
    """
    namespaces = sorted(
        set(policy.spec.scope.namespaces or [policy.metadata.namespace])
    )
    kinds = sorted(policy.spec.scope_kinds)
    selector = policy.spec.scope.selector.to_query()
    key = f"{','.join(namespaces)}|{','.join(kinds)}|{selector}"
    return ScopeRef(key=key, namespaces=namespaces, kinds=kinds, selector=selector)
