"""A Kubernetes API server double that the real ``kubernetes`` client talks to.

No API server can be installed here, so tests run this one: a threaded stdlib HTTP
server on a free loopback port, serving JSON with the API server's semantics closely
enough that ``kubernetes.client`` (typed APIs, ``CustomObjectsApi``, the dynamic
client, ``ApiClient.call_api``) cannot tell the difference on the paths the project
uses. It runs in its own thread, so sync tests and async tests alike can call it.

What it does as the real API does:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/GROUP`` and
  ``/apis/GROUP/VERSION``, built from the registered ``ResourceType`` rows
  (``DEFAULT_TYPES``; ``KubeAPI.register`` adds more);
- verbs get, list (one namespace or all), create, update (PUT), patch, delete;
  list takes ``labelSelector`` (the full set-based syntax), ``fieldSelector``
  (``metadata.name``, ``metadata.namespace``), ``limit`` and ``continue``;
- ``resourceVersion`` is one global counter bumped by every write, as etcd's
  revision is; a PUT or a patch whose result carries a different resourceVersion
  than the stored object is answered 409 Conflict (optimistic concurrency); a write
  that changes nothing keeps the resourceVersion;
- patches: ``application/merge-patch+json`` (RFC 7386), ``application/json-patch+json``
  (RFC 6902, ``test`` included; a failed operation is 422), and
  ``application/strategic-merge-patch+json`` for built-in kinds only (custom
  resources answer 415, as the real API does);
- kinds with a status subresource: writes to the main resource keep the stored
  status, writes to ``.../status`` change only status; ``metadata.generation``
  moves only when something outside metadata and status changes;
- errors are ``Status`` objects with the real reasons and messages (NotFound,
  AlreadyExists, Conflict, Forbidden, Invalid, BadRequest, ...), so the client raises
  ``ApiException`` with the right status;
- list items of built-in kinds carry no ``kind``/``apiVersion``, those of custom
  resources do, as the API server returns them;
- RBAC in miniature: per bearer token, which (verb, group, resource) are allowed;
  anything else is 403 with the API server's message. Everything is allowed until
  a test says otherwise. A token the test did not register is 401 once any token
  is registered.

What it leaves out, on purpose: watches (answered 405), server-side apply (415),
``deletecollection``, finalizers and graceful deletion (delete is immediate),
admission, defaulting and schema validation beyond names and labels, namespace
existence (objects may be created in a namespace nobody created), and strategic
merge patch's merge keys: lists in a strategic merge patch replace, as in a
merge patch.

Tests also reach behind the HTTP surface: ``seed`` and ``get``/``objects`` read and
write the store directly, ``requests`` is the log of what the client sent,
``fail_next`` makes the next matching requests fail with a chosen status, and
``deny``/``allow_only`` shape permissions. The ``kube_api`` fixture gives each
test a fresh server (about a millisecond to start) and stops it afterwards;
``tests/conftest.py`` registers this module as a plugin so the fixture reaches every
test. ``workload`` builds a minimal valid object of any default kind to seed.
"""

from __future__ import annotations

import base64
import copy
import http.server
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.support.kube_patches import (
    PatchError,
    PatchFormatError,
    apply_json_patch,
    json_equal,
    merge_patch,
)
from tests.support.kube_selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

__all__ = [
    "DEFAULT_TYPES",
    "DEFAULT_USER",
    "KubeAPI",
    "RecordedRequest",
    "ResourceType",
    "kube_api",
    "workload",
]

JsonObject = dict[str, Any]

# Who a request without a bearer token is, as the API server names it.
DEFAULT_USER = "system:anonymous"

# The version /version reports; nothing depends on it beyond looking plausible.
SERVER_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0"}

# The verbs discovery advertises: the ones implemented, watch left out on purpose.
RESOURCE_VERBS = ["create", "delete", "get", "list", "patch", "update"]
STATUS_VERBS = ["get", "patch", "update"]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

_DNS_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class ResourceType:
    """One kind the double serves; ``custom`` marks a CRD-defined kind."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    status_subresource: bool = True
    custom: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, or ``namespaces`` for the core group."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


DEFAULT_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", namespaced=False, custom=False),
    ResourceType(
        "apps", "v1", "Deployment", "deployments", custom=False, short_names=("deploy",)
    ),
    ResourceType(
        "apps", "v1", "StatefulSet", "statefulsets", custom=False, short_names=("sts",)
    ),
    ResourceType(
        "apps", "v1", "DaemonSet", "daemonsets", custom=False, short_names=("ds",)
    ),
    ResourceType("argoproj.io", "v1alpha1", "Rollout", "rollouts", short_names=("ro",)),
    ResourceType(
        "argoproj.io", "v1alpha1", "Application", "applications", short_names=("app",)
    ),
    ResourceType(
        "argoproj.io", "v1alpha1", "AppProject", "appprojects", short_names=("appproj",)
    ),
    ResourceType(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
        short_names=("ks",),
    ),
    ResourceType(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
        short_names=("hr",),
    ),
    ResourceType(
        "sla.dev",
        "v1alpha1",
        "SLODefinition",
        "slodefinitions",
        short_names=("slodef",),
    ),
    ResourceType(
        "sla.dev", "v1alpha1", "SLAPolicy", "slapolicies", short_names=("slapol",)
    ),
)


class ApiError(Exception):
    """An answer other than success, carried to the HTTP layer as a Status."""

    REASONS: Mapping[int, str] = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JsonObject | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or self.REASONS.get(code, "Unknown")
        self.details = details
        self.headers = dict(headers or {})

    def status(self) -> JsonObject:
        body: JsonObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double received it, for tests to assert on."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    content_type: str
    token: str | None
    user: str
    verb: str
    resource: str  # "deployments", "slodefinitions/status"; "" for discovery
    status: int = 0


@dataclass
class _Fault:
    verb: str
    resource: str
    group: str | None
    name: str | None
    remaining: int
    code: int
    message: str | None
    headers: Mapping[str, str]

    def error(self, target: _Target) -> ApiError:
        if self.code == 409 and self.message is None:
            return _conflict(target.rtype, target.name or "")
        message = self.message or f"injected failure ({self.code})"
        return ApiError(self.code, message, headers=self.headers)

    def matches(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        return (
            self.remaining > 0
            and self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and self.group in (None, group)
            and self.name in (None, name)
        )


@dataclass
class _Role:
    """Allowed and denied (verb, group, resource) triples; "*" matches anything."""

    allowed: set[tuple[str, str, str]] | None = None  # None: everything
    denied: set[tuple[str, str, str]] = field(default_factory=set)

    def permits(self, verb: str, group: str, resource: str) -> bool:
        def covers(rule: tuple[str, str, str]) -> bool:
            return all(
                want in ("*", have)
                for want, have in zip(rule, (verb, group, resource), strict=True)
            )

        if any(covers(rule) for rule in self.denied):
            return False
        return self.allowed is None or any(covers(rule) for rule in self.allowed)


@dataclass(frozen=True)
class _Target:
    """What a resource URL names."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def resource(self) -> str:
        if self.subresource:
            return f"{self.rtype.plural}/{self.subresource}"
        return self.rtype.plural


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: Mapping[str, str]
    content_type: str
    token: str | None
    raw_body: bytes


class KubeAPI:
    """The double's state and HTTP server; see the module docstring."""

    def __init__(self, types: Iterable[ResourceType] = DEFAULT_TYPES) -> None:
        self._lock = threading.RLock()
        self._types: list[ResourceType] = list(types)
        self._objects: dict[tuple[str, str, str, str], JsonObject] = {}
        self._revision = 0
        self._users: dict[str, str] = {}
        self._roles: dict[str, _Role] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._clients: list[Any] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> KubeAPI:
        handler = _handler_for(self)
        # Port 0: the kernel picks a free port; loopback only, never another address.
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-api-double",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        for api_client in self._clients:
            api_client.close()
        self._clients.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> KubeAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Kubernetes API double is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for this server, closed at stop."""
        from kubernetes import client as k8s

        configuration = k8s.Configuration()
        configuration.host = self.url
        if token is not None:
            configuration.api_key = {"authorization": f"Bearer {token}"}
        api_client = k8s.ApiClient(configuration=configuration)
        self._clients.append(api_client)
        return api_client

    # -- test-facing state -----------------------------------------------------------

    def register(self, rtype: ResourceType) -> None:
        """Serve one more kind (discovery included) from now on."""
        with self._lock:
            self._types.append(rtype)

    def seed(self, obj: Mapping[str, Any]) -> JsonObject:
        """Store an object as if it had been created, status included; returns it."""
        with self._lock:
            stored = copy.deepcopy(dict(obj))
            rtype = self._type_for(stored.get("kind", ""), stored.get("apiVersion"))
            metadata = stored.setdefault("metadata", {})
            if rtype.namespaced and not metadata.get("namespace"):
                raise ValueError(
                    f"{rtype.kind} {metadata.get('name')!r} needs a namespace"
                )
            key = _key(rtype, metadata.get("namespace"), metadata["name"])
            if key in self._objects:
                raise ValueError(
                    f"{rtype.qualified} {metadata['name']!r} is already seeded"
                )
            metadata.setdefault("generation", 1)
            try:
                _validate(rtype, stored)
            except ApiError as error:  # a mistake in the test, not an API answer
                raise ValueError(error.message) from error
            self._objects[key] = self._stamp_new(rtype, stored)
            return copy.deepcopy(self._objects[key])

    def get(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        api_version: str | None = None,
    ) -> JsonObject | None:
        """The stored object, or None; read directly, not through HTTP."""
        with self._lock:
            rtype = self._type_for(kind, api_version)
            found = self._objects.get(_key(rtype, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def objects(
        self, kind: str, namespace: str | None = None, *, api_version: str | None = None
    ) -> list[JsonObject]:
        """Every stored object of a kind (in one namespace, if given), by key."""
        with self._lock:
            rtype = self._type_for(kind, api_version)
            return [
                copy.deepcopy(obj)
                for key, obj in sorted(self._objects.items())
                if key[:2] == (rtype.group, rtype.plural)
                and (namespace is None or key[2] == namespace)
            ]

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def resource_version(self) -> str:
        """The current global revision, as a list response would report it."""
        with self._lock:
            return str(self._revision)

    def add_user(self, token: str, user: str) -> None:
        """Accept ``token`` as ``user``; from then on unknown tokens get 401."""
        with self._lock:
            self._users[token] = user

    def deny(
        self, verb: str, resource: str, *, group: str = "", token: str | None = None
    ) -> None:
        """Forbid one (verb, group, resource) to the token's user ("*" wildcards).

        ``token`` None is the user of requests without a token; any other token must
        have been added with ``add_user`` first.
        """
        with self._lock:
            self._role(token).denied.add((verb, group, resource))

    def allow_only(
        self, rules: Iterable[tuple[str, str, str]], *, token: str | None = None
    ) -> None:
        """Allow the token's user exactly these (verb, group, resource) triples."""
        with self._lock:
            self._role(token).allowed = set(rules)

    def fail_next(
        self,
        verb: str,
        resource: str,
        *,
        status: int = 500,
        times: int = 1,
        group: str | None = None,
        name: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``times`` matching requests fail with ``status``.

        ``verb`` is an API verb (get, list, create, update, patch, delete) or "*";
        ``resource`` a plural such as "deployments" or "slodefinitions/status", or
        "*". Faults are checked after permissions, before the store is touched. A 409
        without a message reads like a real resourceVersion conflict.
        """
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        fault = _Fault(verb, resource, group, name, times, status, message, headers)
        with self._lock:
            self._faults.append(fault)

    def reset(self) -> None:
        """Forget objects, permissions, faults and the request log."""
        with self._lock:
            self._objects.clear()
            self._users.clear()
            self._roles.clear()
            self._faults.clear()
            self._requests.clear()

    # -- request handling --------------------------------------------------------------

    def handle(self, request: _Request) -> tuple[int, JsonObject, Mapping[str, str]]:
        """Answer one HTTP request: status code, JSON body, extra headers."""
        discovery = self._discovery(request.path)
        if discovery is not None and request.method == "GET":
            self._record(request, user="", verb="get", resource="", status=200)
            return 200, discovery, {}

        seen: dict[str, Any] = {"user": "", "verb": "", "resource": "", "body": None}
        try:
            code, answer = self._serve(request, seen)
            headers: Mapping[str, str] = {}
        except ApiError as error:
            code, answer, headers = error.code, error.status(), error.headers
        except Exception as bug:  # a bug in the double: show it to the test as a 500
            failure = ApiError(500, f"Kubernetes API double failed: {bug!r}")
            code, answer, headers = failure.code, failure.status(), failure.headers
        self._record(request, status=code, **seen)
        return code, answer, headers

    def _serve(self, request: _Request, seen: dict[str, Any]) -> tuple[int, JsonObject]:
        """Authenticate, route, authorize, inject faults, then do the verb."""
        seen["user"] = user = self._authenticate(request.token)
        target = self._route(request.path)
        seen["verb"] = verb = _verb(request.method, target, request.query)
        seen["resource"] = target.resource
        seen["body"] = body = _decode(request.raw_body)
        self._authorize(user, verb, target)
        self._inject_fault(verb, target)
        return self._dispatch(verb, target, request, body)

    def _record(
        self,
        request: _Request,
        *,
        user: str,
        verb: str,
        resource: str,
        status: int,
        body: Any = None,
    ) -> None:
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    body=body,
                    content_type=request.content_type,
                    token=request.token,
                    user=user,
                    verb=verb,
                    resource=resource,
                    status=status,
                )
            )

    def _authenticate(self, token: str | None) -> str:
        with self._lock:
            if token is None:
                return DEFAULT_USER
            if token in self._users:
                return self._users[token]
            if self._users:
                raise ApiError(401, "Unauthorized")
            return DEFAULT_USER

    def _authorize(self, user: str, verb: str, target: _Target) -> None:
        with self._lock:
            role = self._roles.get(user)
        if role is None or role.permits(verb, target.rtype.group, target.resource):
            return
        raise ApiError(
            403,
            _forbidden_message(user, verb, target),
            details={
                "name": target.name or "",
                "group": target.rtype.group,
                "kind": target.rtype.plural,
            },
        )

    def _inject_fault(self, verb: str, target: _Target) -> None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(
                    verb, target.rtype.group, target.resource, target.name
                ):
                    fault.remaining -= 1
                    raise fault.error(target)

    def _dispatch(
        self, verb: str, target: _Target, request: _Request, body: Any
    ) -> tuple[int, JsonObject]:
        with self._lock:
            if verb == "list":
                return 200, self._list(target, request.query)
            if verb == "get":
                return 200, self._present(target.rtype, self._stored(target))
            if verb == "create":
                return 201, self._create(target, body)
            if verb == "update":
                return 200, self._update(target, _object_body(body))
            if verb == "patch":
                patched = self._patched(target, request.content_type, body)
                return 200, self._update(target, patched)
            return 200, self._delete(target, body)

    # -- routing -----------------------------------------------------------------------

    def _discovery(self, path: str) -> JsonObject | None:
        with self._lock:
            types = list(self._types)
        parts = [part for part in path.split("/") if part]
        if parts == ["version"]:
            return dict(SERVER_VERSION)
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [],
            }
        if parts == ["api", "v1"]:
            return _resource_list("v1", [t for t in types if t.group == ""])
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": _groups(types),
            }
        if len(parts) == 2 and parts[0] == "apis":
            groups = [g for g in _groups(types) if g["name"] == parts[1]]
            return (
                {"kind": "APIGroup", "apiVersion": "v1", **groups[0]}
                if groups
                else None
            )
        if len(parts) == 3 and parts[0] == "apis":
            served = [t for t in types if (t.group, t.version) == (parts[1], parts[2])]
            return _resource_list(f"{parts[1]}/{parts[2]}", served) if served else None
        return None

    def _route(self, path: str) -> _Target:
        parts = [unquote(part) for part in path.split("/") if part]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()

        with self._lock:
            served = {
                t.plural: t
                for t in self._types
                if (t.group, t.version) == (group, version)
            }
        # ".../namespaces/NS/PLURAL..." is namespaced unless PLURAL is not a namespaced
        # kind, which leaves "/api/v1/namespaces/NAME/status" to the Namespace kind.
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and getattr(served.get(rest[2]), "namespaced", False)
        ):
            namespace, rest = rest[1], rest[2:]
        else:
            namespace = None
        rtype = served.get(rest[0]) if rest else None
        if (
            rtype is None
            or len(rest) > 3
            or (rtype.namespaced and len(rest) > 1 and namespace is None)
        ):
            raise _not_found_path()

        subresource = rest[2] if len(rest) == 3 else None
        if subresource is not None and (
            subresource != "status" or not rtype.status_subresource
        ):
            raise _not_found_path()
        return _Target(
            rtype, namespace, rest[1] if len(rest) > 1 else None, subresource
        )

    # -- verbs -------------------------------------------------------------------------

    def _list(self, target: _Target, query: Mapping[str, str]) -> JsonObject:
        rtype = target.rtype
        try:
            labels = parse_label_selector(query.get("labelSelector", ""))
            fields = parse_field_selector(query.get("fieldSelector", ""))
        except SelectorError as error:
            raise ApiError(400, f"unable to parse requirement: {error}") from error

        selected = [
            (key, obj)
            for key, obj in sorted(self._objects.items())
            if key[:2] == (rtype.group, rtype.plural)
            and (target.namespace is None or key[2] == target.namespace)
            and labels.matches(obj["metadata"].get("labels"))
            and fields.matches(_field_values(obj))
        ]
        page, next_token = _page(selected, query)
        metadata: JsonObject = {"resourceVersion": str(self._revision)}
        if next_token:
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = (
                len(selected) - len(page) - _offset(selected, query)
            )
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.api_version,
            "metadata": metadata,
            "items": [self._present(rtype, obj, in_list=True) for _, obj in page],
        }

    def _create(self, target: _Target, body: Any) -> JsonObject:
        rtype = target.rtype
        if target.name is not None or target.subresource is not None:
            raise ApiError(
                405, "the server does not allow this method on the requested resource"
            )
        obj = _object_body(body)
        _check_type(rtype, obj)
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be an object")
        if metadata.get("resourceVersion"):
            raise ApiError(
                500, "resourceVersion should not be set on objects to be created"
            )
        if rtype.namespaced:
            if metadata.get("namespace") not in (None, "", target.namespace):
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request",
                )
            metadata["namespace"] = target.namespace
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = f"{metadata['generateName']}{uuid.uuid4().hex[:5]}"
        _validate(rtype, obj)

        key = _key(rtype, target.namespace, metadata["name"])
        if key in self._objects:
            raise ApiError(
                409,
                f'{rtype.qualified} "{metadata["name"]}" already exists',
                reason="AlreadyExists",
                details=_details(rtype, metadata["name"]),
            )
        if rtype.status_subresource:
            obj.pop("status", None)
        for system_field in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ):
            metadata.pop(system_field, None)
        metadata["generation"] = 1
        self._objects[key] = self._stamp_new(rtype, obj)
        return self._present(rtype, self._objects[key])

    def _update(self, target: _Target, body: JsonObject) -> JsonObject:
        rtype = target.rtype
        current = self._stored(target)
        _check_type(rtype, body)
        metadata = body.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be an object")
        if metadata.get("name", target.name) != target.name:
            raise ApiError(
                400,
                f"the name of the object ({metadata.get('name')}) does not match "
                f"the name on the URL ({target.name})",
            )
        if (
            rtype.namespaced
            and metadata.get("namespace", target.namespace) != target.namespace
        ):
            raise ApiError(
                400,
                "the namespace of the provided object does not match the namespace "
                "sent on the request",
            )
        wanted_version = metadata.get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
            raise _conflict(rtype, target.name or "")

        proposed = _merge_write(
            rtype, current, body, status_only=target.subresource == "status"
        )
        _validate(rtype, proposed)
        return self._present(rtype, self._commit(target, current, proposed))

    def _patched(self, target: _Target, content_type: str, body: Any) -> JsonObject:
        rtype = target.rtype
        current = self._present(rtype, self._stored(target))
        media_type = content_type.split(";")[0].strip().lower()
        try:
            if media_type == MERGE_PATCH or (
                media_type == STRATEGIC_MERGE_PATCH and not rtype.custom
            ):
                if not isinstance(body, dict):
                    raise PatchFormatError("a merge patch must be a JSON object")
                patched = merge_patch(current, body)
            elif media_type == JSON_PATCH:
                patched = apply_json_patch(current, body)
            else:
                raise ApiError(415, _unsupported_patch_message(rtype, media_type))
        except PatchFormatError as error:
            raise ApiError(400, str(error)) from error
        except PatchError as error:
            raise ApiError(422, str(error)) from error
        return _object_body(patched)

    def _delete(self, target: _Target, body: Any) -> JsonObject:
        rtype = target.rtype
        if target.name is None or target.subresource is not None:
            raise ApiError(
                405, "deletecollection is not supported by the Kubernetes API double"
            )
        current = self._stored(target)
        preconditions = body.get("preconditions") if isinstance(body, dict) else None
        wanted_version = (preconditions or {}).get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {rtype.qualified} "{target.name}": '
                "Precondition failed: ResourceVersion in precondition: "
                f"{wanted_version}, ResourceVersion in object meta: "
                f"{current['metadata']['resourceVersion']}",
                reason="Conflict",
                details=_details(rtype, target.name),
            )
        del self._objects[_key(rtype, target.namespace, target.name)]
        self._revision += 1
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                **_details(rtype, target.name),
                "uid": current["metadata"]["uid"],
            },
        }

    # -- store -------------------------------------------------------------------------

    def _stored(self, target: _Target) -> JsonObject:
        if target.name is None:
            raise ApiError(
                405, "the server does not allow this method on the requested resource"
            )
        found = self._objects.get(_key(target.rtype, target.namespace, target.name))
        if found is None:
            raise ApiError(
                404,
                f'{target.rtype.qualified} "{target.name}" not found',
                details=_details(target.rtype, target.name),
            )
        return found

    def _stamp_new(self, rtype: ResourceType, obj: JsonObject) -> JsonObject:
        self._revision += 1
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        metadata = obj["metadata"]
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", _now())
        metadata["resourceVersion"] = str(self._revision)
        _drop_empty_maps(metadata)
        return obj

    def _commit(
        self, target: _Target, current: JsonObject, proposed: JsonObject
    ) -> JsonObject:
        rtype = target.rtype
        _drop_empty_maps(proposed["metadata"])
        # The storage layer skips writes that change nothing: no new resourceVersion.
        if json_equal(proposed, current):
            return current
        if not json_equal(_spec_of(rtype, proposed), _spec_of(rtype, current)):
            proposed["metadata"]["generation"] = (
                current["metadata"].get("generation", 0) + 1
            )
        self._revision += 1
        proposed["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[_key(rtype, target.namespace, target.name or "")] = proposed
        return proposed

    def _present(
        self, rtype: ResourceType, obj: JsonObject, *, in_list: bool = False
    ) -> JsonObject:
        shown = copy.deepcopy(obj)
        # Built-in kinds come out of the API server's lists without their type.
        if in_list and not rtype.custom:
            shown.pop("kind", None)
            shown.pop("apiVersion", None)
        return shown

    def _type_for(self, kind: str, api_version: str | None) -> ResourceType:
        matches = [
            t
            for t in self._types
            if t.kind == kind and (api_version is None or t.api_version == api_version)
        ]
        if len(matches) != 1:
            raise KeyError(
                f"{len(matches)} registered kinds match {kind!r} {api_version or ''}"
            )
        return matches[0]

    def _role(self, token: str | None) -> _Role:
        if token is not None and token not in self._users:
            raise KeyError("add the token with add_user before giving it permissions")
        user = DEFAULT_USER if token is None else self._users[token]
        return self._roles.setdefault(user, _Role())


# -- helpers without state -------------------------------------------------------------


def _key(
    rtype: ResourceType, namespace: str | None, name: str
) -> tuple[str, str, str, str]:
    return (
        rtype.group,
        rtype.plural,
        (namespace or "") if rtype.namespaced else "",
        name,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _verb(method: str, target: _Target, query: Mapping[str, str]) -> str:
    if method == "GET":
        if query.get("watch") in ("true", "1"):
            raise ApiError(405, "watch is not supported by the Kubernetes API double")
        return "get" if target.name is not None else "list"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs:
        raise ApiError(
            405, "the server does not allow this method on the requested resource"
        )
    return verbs[method]


def _decode(raw_body: bytes) -> Any:
    if not raw_body.strip():
        return None
    try:
        return json.loads(raw_body)
    except ValueError as error:
        raise ApiError(
            400, f"the body of the request is not valid JSON: {error}"
        ) from error


def _object_body(body: Any) -> JsonObject:
    if not isinstance(body, dict):
        raise ApiError(400, "the body of the request must be a JSON object")
    return copy.deepcopy(body)


def _check_type(rtype: ResourceType, obj: JsonObject) -> None:
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in (None, "", rtype.kind) or api_version not in (
        None,
        "",
        rtype.api_version,
    ):
        raise ApiError(
            400,
            f"the API version in the data ({api_version}) does not match the expected "
            f"API version ({rtype.api_version})",
        )


def _merge_write(
    rtype: ResourceType, current: JsonObject, body: JsonObject, *, status_only: bool
) -> JsonObject:
    """The object a write would store, before generation and resourceVersion."""
    if status_only:
        proposed = copy.deepcopy(current)
        proposed.pop("status", None)
        if "status" in body:
            proposed["status"] = copy.deepcopy(body["status"])
        return proposed

    proposed = copy.deepcopy(body)
    proposed["apiVersion"], proposed["kind"] = rtype.api_version, rtype.kind
    # System fields are the server's: a client's copy of them is ignored.
    for system_field in ("uid", "creationTimestamp", "generation", "resourceVersion"):
        if system_field in current["metadata"]:
            proposed["metadata"][system_field] = current["metadata"][system_field]
        else:
            proposed["metadata"].pop(system_field, None)
    proposed["metadata"]["name"] = current["metadata"]["name"]
    if rtype.namespaced:
        proposed["metadata"]["namespace"] = current["metadata"]["namespace"]
    if rtype.status_subresource:
        proposed.pop("status", None)
        if "status" in current:
            proposed["status"] = copy.deepcopy(current["status"])
    return proposed


def _spec_of(rtype: ResourceType, obj: JsonObject) -> JsonObject:
    """What metadata.generation counts: everything but metadata (and status)."""
    left_out = ("metadata", "status") if rtype.status_subresource else ("metadata",)
    return {name: value for name, value in obj.items() if name not in left_out}


def _drop_empty_maps(metadata: JsonObject) -> None:
    # ObjectMeta's maps are omitempty: an emptied one disappears from the answer.
    for name in ("labels", "annotations"):
        if metadata.get(name) == {}:
            del metadata[name]


def _validate(rtype: ResourceType, obj: JsonObject) -> None:
    metadata = obj["metadata"]
    name = metadata.get("name")
    problems: list[str] = []
    if not isinstance(name, str) or not name:
        problems.append(
            "metadata.name: Required value: name or generateName is required"
        )
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        problems.append(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 '
            "subdomain must consist of lower case alphanumeric characters, '-' or "
            "'.', and must start and end with an alphanumeric character"
        )
    problems += _map_problems(metadata, "labels", values_are_labels=True)
    problems += _map_problems(metadata, "annotations", values_are_labels=False)
    if problems:
        raise ApiError(
            422,
            f'{rtype.group_kind} "{name}" is invalid: {", ".join(problems)}',
            details=_details(rtype, str(name)),
        )


def _map_problems(
    metadata: JsonObject, field_name: str, *, values_are_labels: bool
) -> list[str]:
    mapping = metadata.get(field_name)
    if mapping is None:
        return []
    if not isinstance(mapping, dict):
        raise ApiError(400, f"metadata.{field_name} must be an object of strings")
    problems: list[str] = []
    for key, value in mapping.items():
        if not isinstance(value, str):
            raise ApiError(400, f"metadata.{field_name}[{key}] must be a string")
        if not _QUALIFIED_NAME.match(key) or len(key.split("/")[-1]) > 63:
            problems.append(
                f'metadata.{field_name}: Invalid value: "{key}": '
                "name part must be a qualified name"
            )
        if values_are_labels and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            problems.append(
                f'metadata.labels: Invalid value: "{value}": a valid label must be an '
                "empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character"
            )
    return problems


def _field_values(obj: JsonObject) -> dict[str, str]:
    metadata = obj["metadata"]
    return {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
    }


def _page(
    selected: list[tuple[tuple[str, str, str, str], JsonObject]],
    query: Mapping[str, str],
) -> tuple[list[tuple[tuple[str, str, str, str], JsonObject]], str]:
    """One page of a list and the continue token for the next, if any is left."""
    offset = _offset(selected, query)
    limit_text = query.get("limit", "")
    limit = (
        int(limit_text)
        if limit_text.isdigit() and int(limit_text) > 0
        else len(selected)
    )
    page = selected[offset : offset + limit]
    if offset + limit >= len(selected) or not page:
        return page, ""
    last_key = page[-1][0]
    return page, base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode()


def _offset(
    selected: list[tuple[tuple[str, str, str, str], JsonObject]],
    query: Mapping[str, str],
) -> int:
    token = query.get("continue", "")
    if not token:
        return 0
    try:
        after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())))
    except ValueError as error:
        raise ApiError(400, "continue key is not valid") from error
    return sum(1 for key, _ in selected if key <= after)


def _details(rtype: ResourceType, name: str) -> JsonObject:
    return {"name": name, "group": rtype.group, "kind": rtype.plural}


def _conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        reason="Conflict",
        details=_details(rtype, name),
    )


def _not_found_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def _unsupported_patch_message(rtype: ResourceType, media_type: str) -> str:
    accepted = [JSON_PATCH, MERGE_PATCH] + (
        [] if rtype.custom else [STRATEGIC_MERGE_PATCH]
    )
    return (
        f"the body of the request was in an unknown format - accepted media types "
        f"include: {', '.join(accepted)} (got {media_type or 'none'})"
    )


def _forbidden_message(user: str, verb: str, target: _Target) -> str:
    rtype = target.rtype
    subject = f'{rtype.qualified} "{target.name}"' if target.name else rtype.qualified
    where = (
        f'in the namespace "{target.namespace}"'
        if target.namespace
        else "at the cluster scope"
    )
    return (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource '
        f'"{target.resource}" in API group "{rtype.group}" {where}'
    )


def _groups(types: list[ResourceType]) -> list[JsonObject]:
    groups: dict[str, list[str]] = {}
    for rtype in types:
        if rtype.group and rtype.version not in groups.setdefault(rtype.group, []):
            groups[rtype.group].append(rtype.version)
    return [
        {
            "name": name,
            "versions": [
                {"groupVersion": f"{name}/{v}", "version": v} for v in versions
            ],
            "preferredVersion": {
                "groupVersion": f"{name}/{versions[0]}",
                "version": versions[0],
            },
        }
        for name, versions in groups.items()
    ]


def _resource_list(group_version: str, types: list[ResourceType]) -> JsonObject:
    resources: list[JsonObject] = []
    for rtype in types:
        resources.append(
            {
                "name": rtype.plural,
                "singularName": rtype.kind.lower(),
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": RESOURCE_VERBS,
                "shortNames": list(rtype.short_names),
            }
        )
        if rtype.status_subresource:
            resources.append(
                {
                    "name": f"{rtype.plural}/status",
                    "singularName": "",
                    "namespaced": rtype.namespaced,
                    "kind": rtype.kind,
                    "verbs": STATUS_VERBS,
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


# -- HTTP ------------------------------------------------------------------------------


def _handler_for(api: KubeAPI) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects
        # An idle keep-alive connection is dropped after this long; urllib3 reconnects.
        timeout = 30

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without this, Nagle's algorithm
            # holds the body until the client's delayed ACK, 40 ms per request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = _Request(
                method=self.command,
                path=split.path,
                query={
                    k: v[0]
                    for k, v in parse_qs(split.query, keep_blank_values=True).items()
                },
                content_type=self.headers.get("Content-Type", ""),
                token=_bearer(self.headers.get("Authorization")),
                raw_body=self.rfile.read(length) if length else b"",
            )
            code, body, headers = api.handle(request)
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log is ``KubeAPI.requests``."""

    return Handler


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


# -- builders ------------------------------------------------------------------------


def workload(
    kind: str,
    name: str,
    namespace: str = "default",
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    spec: Mapping[str, Any] | None = None,
) -> JsonObject:
    """A minimal valid object of ``kind`` (a DEFAULT_TYPES kind name) to seed.

    Pod-owning kinds get the selector and template the typed client insists on;
    ``spec`` entries replace the defaults at the top level of the spec.
    """
    rtype = next(t for t in DEFAULT_TYPES if t.kind == kind)
    metadata: JsonObject = {"name": name, "labels": dict(labels or {"app": name})}
    if rtype.namespaced:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = dict(annotations)
    body: JsonObject = {"apiVersion": rtype.api_version, "kind": kind}
    body["metadata"] = metadata
    pods = _pod_template(name) if kind in _POD_OWNERS else {}
    body["spec"] = {**_DEFAULT_SPECS.get(kind, {}), **pods, **(spec or {})}
    if kind == "Namespace":
        del body["spec"]
    return copy.deepcopy(body)


def _pod_template(name: str) -> JsonObject:
    return {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{"name": "app", "image": "registry.example/app:1"}]
            },
        },
    }


_POD_OWNERS = ("Deployment", "StatefulSet", "DaemonSet", "Rollout")
_DEFAULT_SPECS: Mapping[str, JsonObject] = {
    "Deployment": {"replicas": 1},
    "StatefulSet": {"replicas": 1, "serviceName": "web"},
    "DaemonSet": {},
    "Rollout": {"replicas": 1},
    "Application": {
        "project": "default",
        "source": {"repoURL": "https://git.example/app.git", "path": "deploy"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
    },
    "AppProject": {"sourceRepos": ["*"]},
    "Kustomization": {
        "interval": "10m",
        "path": "./deploy",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "app"},
    },
    "HelmRelease": {
        "interval": "10m",
        "chart": {
            "spec": {
                "chart": "app",
                "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            }
        },
    },
    "SLODefinition": {"service": "web", "objective": 99.9, "window": "30d"},
    "SLAPolicy": {"slos": {"selector": {}}},
}


# -- pytest ----------------------------------------------------------------------------


@pytest.fixture
def kube_api() -> Iterator[KubeAPI]:
    """A fresh Kubernetes API double for one test, stopped afterwards."""
    with KubeAPI() as api:
        yield api
