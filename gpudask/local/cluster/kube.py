"""A small HTTPS client for the local API server: server-side apply with the server's own verdict.

Server-side apply (`PATCH application/apply-patch+yaml`, `fieldValidation=Strict`, as
`kubectl apply --server-side` sends it) and deletes need the raw response: the status, the
server's `Status.message`, and the `Warning` headers (Pod Security warnings on workloads
come back that way). The `kubernetes` package's dynamic client drops headers, so this
speaks HTTP itself; resource paths come from the server's discovery documents.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_RETRIES_ON_429 = 10  # client-go's default for Retry-After answers


def _retry_after(header: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds form), 1 s when absent or odd, at most 10."""
    try:
        return min(max(float(header or 1), 0.1), 10.0)
    except ValueError:
        return 1.0


class ApiError(RuntimeError):
    """The API server refused a request: `status`, `reason` and its `message`, verbatim."""

    def __init__(self, status: int, reason: str, message: str, what: str = ""):
        super().__init__(f"{what}: {status} {reason}: {message}" if what else f"{status} {reason}: {message}")
        self.status, self.reason, self.message, self.what = status, reason, message, what


@dataclass
class Response:
    status: int
    data: Any
    warnings: list[str] = field(default_factory=list)


def describe(obj: dict[str, Any]) -> str:
    """`Kind/namespace/name` (or `Kind/name`) of a manifest, for messages."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


class Kube:
    """Client-certificate (or bearer-token) access to one API server, from a kubeconfig we wrote."""

    def __init__(self, kubeconfig: Path, timeout: float = 30.0):
        doc = yaml.safe_load(kubeconfig.read_text())
        cluster = doc["clusters"][0]["cluster"]
        user = doc["users"][0]["user"]
        self.server = cluster["server"].rstrip("/")
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        if "client-certificate" in user:
            self._context.load_cert_chain(user["client-certificate"], user["client-key"])
        self._token = user.get("token")
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}

    # --- raw HTTP ------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        what: str = "",
    ) -> Response:
        url = self.server + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = None
        if body is not None:
            data = (yaml.safe_dump(body) if "yaml" in content_type else json.dumps(body)).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        for attempt in range(_RETRIES_ON_429 + 1):
            try:
                with urllib.request.urlopen(request, context=self._context, timeout=self.timeout) as response:
                    raw = response.read()
                    warnings = response.headers.get_all("Warning") or []
                    return Response(response.status, _decode(raw), [_warning_text(w) for w in warnings])
            except urllib.error.HTTPError as err:
                if err.code == 429 and attempt < _RETRIES_ON_429:
                    # A CRD's storage answers 429 "storage is (re)initializing" for a moment after
                    # it is created; client-go waits Retry-After and tries again, and so do we.
                    err.read()
                    time.sleep(_retry_after(err.headers.get("Retry-After")))
                    continue
                raw = err.read()
                try:
                    status_doc = json.loads(raw)
                except ValueError:
                    status_doc = {"message": raw.decode(errors="replace"), "reason": err.reason}
                raise ApiError(
                    err.code, str(status_doc.get("reason", "")), str(status_doc.get("message", "")), what
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get(self, path: str) -> Any:
        return self.request("GET", path).data

    # --- discovery and paths -------------------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from discovery (refreshed once when the kind is new: CRDs)."""
        for refresh in (False, True):
            if refresh or api_version not in self._resources:
                base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
                try:
                    listing = self.get(base)
                except ApiError as err:
                    if err.status != 404 or refresh:
                        raise
                    continue
                self._resources[api_version] = {
                    r["kind"]: (r["name"], bool(r["namespaced"]))
                    for r in listing.get("resources", [])
                    if "/" not in r["name"]
                }
            found = self._resources.get(api_version, {}).get(kind)
            if found:
                return found
        raise ApiError(404, "NotFound", f'the server has no resource for kind "{kind}" in {api_version}')

    def path(self, api_version: str, kind: str, name: str = "", namespace: str = "") -> str:
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{namespace}"
        return f"{base}/{plural}" + (f"/{name}" if name else "")

    def path_of(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        plural_namespaced = self.resource(obj["apiVersion"], obj["kind"])
        namespace = (meta.get("namespace") or "default") if plural_namespaced[1] else ""
        return self.path(obj["apiVersion"], obj["kind"], meta["name"], namespace)

    # --- verbs ----------------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any], field_manager: str, *, force: bool = True) -> Response:
        """Server-side apply with strict field validation; raises ApiError with the server's message."""
        what = describe(obj)
        try:
            path = self.path_of(obj)
        except ApiError as err:
            raise ApiError(err.status, err.reason, err.message, what) from None
        params = {"fieldManager": field_manager, "fieldValidation": "Strict"}
        if force:
            params["force"] = "true"
        return self.request("PATCH", path, obj, content_type="application/apply-patch+yaml", params=params, what=what)

    def delete(self, obj: dict[str, Any], propagation: str = "Background") -> Response | None:
        """Delete; None when it was already gone."""
        try:
            return self.request(
                "DELETE",
                self.path_of(obj),
                {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
                what=describe(obj),
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def exists(self, obj: dict[str, Any]) -> bool:
        try:
            self.get(self.path_of(obj))
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    def list(self, api_version: str, kind: str, namespace: str = "", **params: str) -> list[dict[str, Any]]:
        path = self.path(api_version, kind, namespace=namespace)
        return self.request("GET", path, params=params or None).data.get("items", [])


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")  # /readyz and friends answer plain text


def _warning_text(header: str) -> str:
    # RFC 7234 warning: `299 - "text"`; keep the text.
    parts = header.split(" ", 2)
    text = parts[2] if len(parts) == 3 else header
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':  # a quoted-string: drop the quotes, undo its escapes
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text
