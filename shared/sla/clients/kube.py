"""The Kubernetes API, reduced to what the functions do with it.

One code path for every kind: each call goes through the official client's
``ApiClient.call_api`` with a path built from the kind's group, version and plural,
and answers the object as JSON (a ``dict``), so a Deployment and an SLODefinition
take the same road and no discovery round trip is paid on a cold start.

The ``kubernetes`` package is imported on first use, never at import time: importing
``kubernetes.client`` takes about 0.28 s (kubernetes 35, Python 3.11, measured on
the development machine), a price a function scaled to zero would otherwise pay on
every cold start, even for events that never touch the cluster.

Failures come out as the library's errors, raised ``from`` the client's:

    409                                   KubeConflict: re-read and decide again
    404                                   KubeNotFound
    403                                   KubeForbidden
    429, 5xx, no connection, timeout      KubeUnavailable (transient)
    any other status, a non-object answer KubeError

The client is synchronous, as the official one is: async handlers call it through
``asyncio.to_thread``. It does not retry on an answer; a conflict asks the caller to
re-read, and whether a transient failure is retried here or by the broker is the
caller's choice. urllib3, under the official client, would otherwise retry a get
answered 429 or 503 with ``Retry-After`` by itself, sleeping as long as the header
says (up to six hours by default), so that is switched off; only connections that
fail before a request is sent, and reads of idempotent calls, are retried there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from sla.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeNotFound,
    KubeUnavailable,
)

__all__ = [
    "APPLICATION",
    "APP_PROJECT",
    "DAEMON_SET",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEPLOYMENT",
    "HELM_RELEASE",
    "KINDS",
    "KUSTOMIZATION",
    "NAMESPACE",
    "ROLLOUT",
    "SLA_POLICY",
    "SLO_DEFINITION",
    "STATEFUL_SET",
    "JsonObject",
    "KubeClient",
    "ResourceKind",
]

JsonObject = dict[str, Any]
"""A Kubernetes object as the API's JSON: apiVersion, kind, metadata, spec, status."""

# Connect and read timeouts for one call. The API server answers a get or a patch in
# milliseconds; ten seconds leaves room for a busy control plane without letting a
# stuck call outlive the broker's delivery timeout.
DEFAULT_TIMEOUT_SECONDS: Final = 10.0

# Objects per list page: the page size kubectl uses.
LIST_PAGE_SIZE: Final = 500
# Pages one list may take before giving up: 500 × 1000 objects is far past any scope
# a policy may touch, and the bound keeps a misbehaving server from looping us.
LIST_MAX_PAGES: Final = 1000

MERGE_PATCH: Final = "application/merge-patch+json"


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """Where a kind lives in the API: group ("" for core), version, plural."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str = ""
    ) -> str:
        """The URL path of the collection, an object, or one of its subresources."""
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        parts = [root]
        if self.namespaced and namespace is not None:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


NAMESPACE: Final = ResourceKind("", "v1", "namespaces", "Namespace", namespaced=False)
DEPLOYMENT: Final = ResourceKind("apps", "v1", "deployments", "Deployment")
STATEFUL_SET: Final = ResourceKind("apps", "v1", "statefulsets", "StatefulSet")
DAEMON_SET: Final = ResourceKind("apps", "v1", "daemonsets", "DaemonSet")
ROLLOUT: Final = ResourceKind("argoproj.io", "v1alpha1", "rollouts", "Rollout")
APPLICATION: Final = ResourceKind(
    "argoproj.io", "v1alpha1", "applications", "Application"
)
APP_PROJECT: Final = ResourceKind(
    "argoproj.io", "v1alpha1", "appprojects", "AppProject"
)
KUSTOMIZATION: Final = ResourceKind(
    "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization"
)
HELM_RELEASE: Final = ResourceKind(
    "helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease"
)
SLO_DEFINITION: Final = ResourceKind(
    "sla.dev", "v1alpha1", "slodefinitions", "SLODefinition"
)
SLA_POLICY: Final = ResourceKind("sla.dev", "v1alpha1", "slapolicies", "SLAPolicy")

KINDS: Final[Mapping[str, ResourceKind]] = {
    kind.kind: kind
    for kind in (
        NAMESPACE,
        DEPLOYMENT,
        STATEFUL_SET,
        DAEMON_SET,
        ROLLOUT,
        APPLICATION,
        APP_PROJECT,
        KUSTOMIZATION,
        HELM_RELEASE,
        SLO_DEFINITION,
        SLA_POLICY,
    )
}
"""The kinds the system reads or writes, by kind name (a policy's scope names them)."""


class KubeClient:
    """Calls on one API server; build it with ``from_url``, ``from_kubeconfig`` or
    ``in_cluster``, and ``close`` it (or use it as a context manager)."""

    def __init__(
        self, api_client: Any, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        # The official client is untyped: it stays behind this attribute.
        self._api: Any = api_client
        self._timeout = (timeout_seconds, timeout_seconds)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        verify_tls: bool = True,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> KubeClient:
        """An API server at ``url``, with a bearer token if given."""
        k8s = _client_module()
        configuration = k8s.Configuration()
        configuration.host = url
        configuration.retries = _transport_retries()
        configuration.verify_ssl = verify_tls
        configuration.ssl_ca_cert = ca_file
        if token is not None:
            configuration.api_key = {"authorization": f"Bearer {token}"}
        return cls(k8s.ApiClient(configuration), timeout_seconds=timeout_seconds)

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        context: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> KubeClient:
        """The cluster of a kubeconfig (by default ``$KUBECONFIG``, ~/.kube/config)."""
        k8s = _client_module()
        configuration = k8s.Configuration()
        config_file = os.fspath(path) if path is not None else None
        _load_config(
            "load_kube_config",
            config_file=config_file,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
        configuration.retries = _transport_retries()
        return cls(k8s.ApiClient(configuration), timeout_seconds=timeout_seconds)

    @classmethod
    def in_cluster(
        cls, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> KubeClient:
        """The cluster the pod runs in, as its ServiceAccount.

        The client re-reads the projected token before it expires, so a
        long-lived function keeps working across token rotation.
        """
        k8s = _client_module()
        configuration = k8s.Configuration()
        _load_config("load_incluster_config", client_configuration=configuration)
        configuration.retries = _transport_retries()
        return cls(k8s.ApiClient(configuration), timeout_seconds=timeout_seconds)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def list_objects(
        self,
        kind: ResourceKind,
        namespace: str | None,
        *,
        label_selector: str = "",
    ) -> list[JsonObject]:
        """Every object of ``kind`` in ``namespace`` (None: all namespaces) whose
        labels match ``label_selector`` (the API's syntax; "" matches all).

        Pages through the list; items get their ``apiVersion`` and ``kind`` back,
        which the API server leaves out of built-in kinds' list items.
        """
        items: list[JsonObject] = []
        continue_token = ""
        for _ in range(LIST_MAX_PAGES):
            query: list[tuple[str, str | int]] = [("limit", LIST_PAGE_SIZE)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if continue_token:
                query.append(("continue", continue_token))
            page = self._call(
                "list", kind, namespace, None, "GET", kind.path(namespace), query=query
            )
            items += [_typed(kind, item) for item in _items(page, kind, namespace)]
            continue_token = str(page.get("metadata", {}).get("continue") or "")
            if not continue_token:
                return items
        raise KubeError(
            f"the list did not end within {LIST_MAX_PAGES} pages",
            status=None,
            verb="list",
            kind=kind.kind,
            namespace=namespace or "",
        )

    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> JsonObject:
        """One object; KubeNotFound when it does not exist."""
        path = kind.path(namespace, name)
        return self._call("get", kind, namespace, name, "GET", path)

    def merge_patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> JsonObject:
        """Apply a JSON merge patch (RFC 7386: None deletes a key, objects merge,
        lists replace) and return the object as stored.

        With ``resource_version`` the patch applies only to that version of the
        object; KubeConflict means it changed since it was read.
        """
        body = _with_resource_version(patch, resource_version)
        path = kind.path(namespace, name)
        return self._call(
            "patch",
            kind,
            namespace,
            name,
            "PATCH",
            path,
            body=body,
            content=MERGE_PATCH,
        )

    def patch_status(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> JsonObject:
        """Merge ``status`` into the object's status subresource; only status changes.

        A key set to None is removed; keys not named are kept.
        """
        body = _with_resource_version({"status": dict(status)}, resource_version)
        path = kind.path(namespace, name, "status")
        return self._call(
            "patch",
            kind,
            namespace,
            name,
            "PATCH",
            path,
            body=body,
            content=MERGE_PATCH,
        )

    def _call(
        self,
        verb: str,
        kind: ResourceKind,
        namespace: str | None,
        name: str | None,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str | int]] | None = None,
        body: JsonObject | None = None,
        content: str = "application/json",
    ) -> JsonObject:
        """One request; the answer as JSON, or the library's error for it."""
        where = {
            "verb": verb,
            "kind": kind.kind,
            "name": name or "",
            "namespace": namespace or "",
        }
        api_exception, transport_error = _client_errors()
        try:
            answer = self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content},
                body=body,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=self._timeout,
            )
        except api_exception as exc:
            raise _from_api_exception(exc, **where) from exc
        except transport_error as exc:
            raise KubeUnavailable(str(exc), status=None, **where) from exc
        if not isinstance(answer, dict):
            raise KubeError("the answer is not a JSON object", status=None, **where)
        return answer


def _client_module() -> Any:
    """``kubernetes.client``, imported on first use (see the module docstring)."""
    import kubernetes.client  # type: ignore[import-untyped]

    return kubernetes.client


def _load_config(loader: str, **arguments: Any) -> None:
    """Run one of ``kubernetes.config``'s loaders; a bad config is a KubeError."""
    import kubernetes.config  # type: ignore[import-untyped]

    try:
        getattr(kubernetes.config, loader)(**arguments)
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise KubeError(
            f"no usable cluster configuration: {exc}",
            status=None,
            verb="configure",
            kind="",
        ) from exc


def _transport_retries() -> Any:
    """urllib3's retries minus those driven by ``Retry-After`` (module docstring)."""
    import urllib3

    # Three tries is urllib3's own default; redirects are never followed, as an
    # API server has no reason to send one.
    return urllib3.Retry(total=3, redirect=0, respect_retry_after_header=False)


def _client_errors() -> tuple[type[Exception], type[Exception]]:
    """The client's HTTP error, and urllib3's for calls that got no answer."""
    import urllib3.exceptions

    api_exception: type[Exception] = _client_module().exceptions.ApiException
    return api_exception, urllib3.exceptions.HTTPError


def _from_api_exception(exc: Any, **where: str) -> KubeError:
    status = int(exc.status) if exc.status else None
    message = _status_message(exc.body) or str(exc.reason or "no message")
    error_type = _ERRORS_BY_STATUS.get(status or 0, KubeError)
    if status is not None and (status == 429 or status >= 500):
        error_type = KubeUnavailable
    return error_type(message, status=status, **where)


_ERRORS_BY_STATUS: Final[Mapping[int, type[KubeError]]] = {
    403: KubeForbidden,
    404: KubeNotFound,
    409: KubeConflict,
}


def _status_message(body: Any) -> str:
    """The ``message`` of a Status body, or "" when the body is not one."""
    try:
        status = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return message if isinstance(message, str) else ""


def _with_resource_version(
    patch: Mapping[str, Any], resource_version: str | None
) -> JsonObject:
    body = dict(patch)
    if resource_version is not None:
        metadata = body.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
        body["metadata"] = {**metadata, "resourceVersion": resource_version}
    return body


def _items(page: JsonObject, kind: ResourceKind, namespace: str | None) -> list[Any]:
    items = page.get("items")
    if not isinstance(items, list):
        raise KubeError(
            "the list answer has no items",
            status=None,
            verb="list",
            kind=kind.kind,
            namespace=namespace or "",
        )
    return items


def _typed(kind: ResourceKind, item: Any) -> JsonObject:
    if not isinstance(item, dict):
        raise KubeError(
            "a list item is not a JSON object", status=None, verb="list", kind=kind.kind
        )
    return {"apiVersion": kind.api_version, "kind": kind.kind, **item}
