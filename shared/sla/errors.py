"""The library's exceptions.

    SLAError
    ├── SpecError            a document that cannot be loaded (file, field, value)
    ├── DataError            counts that cannot be true (good > total, NaN, negative)
    ├── StoreError           PostgreSQL or Redis failed
    │   └── StoreUnavailable     transient: the caller should retry
    ├── DatasourceError      Prometheus failed
    │   └── DatasourceUnavailable  transient: the caller should retry
    └── KubeError            the Kubernetes API refused or failed
        ├── KubeConflict         409: a stale resourceVersion, or it exists; re-read
        ├── KubeNotFound         404
        ├── KubeForbidden        403: the ServiceAccount lacks the verb
        └── KubeUnavailable      429, 5xx or no connection: transient, retry later

Errors from asyncpg, redis, httpx and the Kubernetes client are mapped to these at
the boundary and raised ``from`` the original.
"""

from __future__ import annotations


class SLAError(Exception):
    """Base of every error the library raises on purpose."""


class SpecError(SLAError, ValueError):
    """A document that cannot be loaded; says where and what."""

    def __init__(
        self, message: str, *, source: str = "", field: str = "", value: object = None
    ) -> None:
        self.source = source
        self.field = field
        self.value = value
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class DataError(SLAError, ValueError):
    """Counts that cannot describe real traffic, with the series they came from."""

    def __init__(self, message: str, *, series: str = "") -> None:
        self.series = series
        super().__init__(f"{message} ({series})" if series else message)


class StoreError(SLAError):
    """The store failed in a way a retry will not fix."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now; the work should be retried."""


class DatasourceError(SLAError):
    """Prometheus rejected a query or answered something unusable."""


class DatasourceUnavailable(DatasourceError):
    """Prometheus cannot be reached now, or timed out; retry later."""


class KubeError(SLAError):
    """The Kubernetes API answered an error; says which call on which object.

    ``status`` is the HTTP status, or None when no answer came at all.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        verb: str,
        kind: str,
        name: str = "",
        namespace: str = "",
    ) -> None:
        self.status = status
        self.verb = verb
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        target = "/".join(part for part in (self.namespace, self.name) if part)
        code = self.status if self.status is not None else "no answer"
        return f"{self.verb} {self.kind} {target or '(all)'}: {code}: {self.message}"


class KubeConflict(KubeError):
    """409: the object changed since it was read (or already exists); re-read it."""


class KubeNotFound(KubeError):
    """404: the object, or its kind, does not exist."""


class KubeForbidden(KubeError):
    """403: the ServiceAccount's role does not grant this verb on this resource."""


class KubeUnavailable(KubeError):
    """429, 5xx or no connection: transient; the work should be retried."""
