"""From stack outputs to a `distributed.Client` in one line.

    from gpudask.client import connect
    conn = connect.connect(stack="dev")             # `pulumi stack output` when the CLI is here
    conn = connect.connect(outputs="outputs.json")  # or a saved `pulumi stack output --json`
    conn.client.submit(...); conn.scale(2, worker_group="gpu")

The direct `schedulerAddress` is used when it is reachable (inside the cluster, or the
internal load balancer from the VPC); otherwise the operator's
`KubeCluster.from_name(daskClusterName, namespace=daskNamespace)`, which port-forwards.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from dask_kubernetes.operator import KubeCluster
from distributed import Client
from distributed.comm.addressing import get_address_host_port
from distributed.security import Security

# Installed with `pip install "gpu-dask[client]"` this module needs only Dask and the
# operator's client (no Pulumi SDK): `pulumi stack output` then runs in the caller's folder.
_CHECKOUT = Path(__file__).resolve().parents[2]


def _project_dir() -> Path:
    return _CHECKOUT if (_CHECKOUT / "Pulumi.yaml").is_file() else Path.cwd()


REQUIRED_OUTPUTS = ("schedulerAddress", "daskClusterName", "daskNamespace")
TLS_OUTPUTS = ("tlsCaCertPem", "tlsClientCertPem", "tlsClientKeyPem")
# Packages whose versions must match between client and cluster for pickled tasks to work.
MATCHING_PACKAGES = ("dask", "distributed", "python")
DEFAULT_GROUP = "default"


class ConnectError(Exception):
    """Why no client could be made, and what to do about it."""


def stack_outputs(stack: str | None = None, outputs: str | Path | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stack's outputs: given, from a JSON file, or from `pulumi stack output`."""
    if isinstance(outputs, Mapping):
        data = dict(outputs)
    elif outputs is not None:
        path = Path(outputs)
        if not path.is_file():
            raise ConnectError(f"outputs file {path} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConnectError(
                f"outputs file {path} is not JSON ({err}); write it with `pulumi stack output --json`"
            ) from err
    elif stack is None:
        raise ConnectError("name a stack (read with the Pulumi CLI) or pass outputs (a dict or a JSON file)")
    else:
        data = _outputs_from_cli(stack)
    if not isinstance(data, dict):
        raise ConnectError(f"stack outputs must be a JSON object, got {type(data).__name__}")
    missing = [key for key in REQUIRED_OUTPUTS if not data.get(key)]
    tls_present = [key for key in TLS_OUTPUTS if data.get(key)]
    if tls_present:
        missing += [key for key in TLS_OUTPUTS if key not in tls_present]
    if missing:
        raise ConnectError(
            f"stack outputs lack {', '.join(missing)} (present: {', '.join(sorted(data)) or 'none'}); "
            "has `pulumi up` completed for this stack? (TLS outputs need --show-secrets)"
        )
    address = str(data["schedulerAddress"])
    if tls_present and not address.startswith("tls://"):
        raise ConnectError(
            f"schedulerAddress {address!r} is not a tls:// address, but the stack has TLS certificates: "
            "the scheduler requires encryption, so a plain connection would be refused"
        )
    return data


def security_from(outputs: Mapping[str, Any], folder: Path) -> Security | None:
    """A client `Security` from the stack's TLS outputs, its files written (0600) to `folder`."""
    if not outputs.get("tlsCaCertPem"):
        return None
    paths = {}
    for key, file_name in zip(TLS_OUTPUTS, ("ca.pem", "client.pem", "client-key.pem"), strict=True):
        path = folder / file_name
        path.touch(mode=0o600)
        path.write_text(str(outputs[key]))
        paths[key] = str(path)
    return Security(
        tls_ca_file=paths["tlsCaCertPem"],
        tls_client_cert=paths["tlsClientCertPem"],
        tls_client_key=paths["tlsClientKeyPem"],
        require_encryption=True,
    )


def _outputs_from_cli(stack: str) -> dict[str, Any]:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise ConnectError(
            f"no Pulumi CLI on PATH to read stack {stack!r}: save the outputs where it is "
            f"(`pulumi stack output --json --show-secrets --stack {stack} > outputs.json`) and pass --outputs outputs.json"
        )
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
    done = subprocess.run(command, capture_output=True, text=True, cwd=_project_dir(), check=False)
    if done.returncode != 0:
        raise ConnectError(f"`{' '.join(command[1:])}` failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def candidate_addresses(outputs: Mapping[str, Any]) -> list[str]:
    """Direct addresses to try, in order: the in-cluster one, then the internal load balancer."""
    addresses = [str(outputs["schedulerAddress"])]
    if outputs.get("internalLoadBalancerIp"):
        scheme = addresses[0].split("://", 1)[0]
        _, port = get_address_host_port(addresses[0])
        addresses.append(f"{scheme}://{outputs['internalLoadBalancerIp']}:{port}")
    return addresses


def reachable(address: str, timeout: float = 2.0) -> bool:
    """A TCP connection to the address opens (DNS included) within `timeout` seconds."""
    try:
        host, port = get_address_host_port(address)
    except ValueError:
        return False
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def versions(client: Client) -> dict[str, Any]:
    """`Client.get_versions()` (synchronous client: a dict, never a coroutine)."""
    return cast(dict[str, Any], client.get_versions())


def version_skew(found: Mapping[str, Any]) -> list[str]:
    """Mismatches between the client and the scheduler, from `Client.get_versions()`."""

    def version(side: Mapping[str, Any], package: str) -> str | None:
        if package == "python":
            full = (side.get("host") or {}).get("python") or ""
            return ".".join(full.split(".")[:2]) or None
        return (side.get("packages") or {}).get(package)

    problems = []
    for package in MATCHING_PACKAGES:
        mine, theirs = version(found["client"], package), version(found["scheduler"], package)
        if mine and theirs and mine != theirs:
            problems.append(f"{package}: client {mine}, cluster {theirs}")
    return problems


@dataclass
class StackConnection:
    """A client for the stack's DaskCluster, and the means to scale its worker groups."""

    client: Client
    outputs: dict[str, Any]
    via: str  # the direct address used, or "port-forward"
    cluster: KubeCluster | None = None
    _kube: KubeCluster | None = field(default=None, repr=False)
    _tls_dir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def dashboard_command(self) -> str:
        """How a person reaches the dashboard: 8787 is open to the operator's namespace only."""
        name, namespace = self.outputs["daskClusterName"], self.outputs["daskNamespace"]
        return f"kubectl port-forward -n {namespace} svc/{name}-scheduler 8787:8787, then http://localhost:8787/status"

    def _kube_cluster(self) -> KubeCluster:
        if self.cluster is not None:
            return self.cluster
        if self._kube is None:
            self._kube = KubeCluster.from_name(self.outputs["daskClusterName"], namespace=self.outputs["daskNamespace"])
        return self._kube

    def scale(self, n: int, worker_group: str = "gpu", force: bool = False) -> None:
        """Scale a worker group through the operator, like the seed's `HelmCluster.scale`.

        `"gpu"` (or `"default"`) is the DaskCluster's own GPU group; other names are the
        stack's `dask.workerGroups` keys. Scaling the autoscaled group is refused unless
        `force`: `KubeCluster.scale()` deletes the DaskAutoscaler (the next `pulumi up`
        puts it back), and replicas set by hand on other groups revert at the next `pulumi up`.
        """
        groups: dict[str, Any] = self.outputs.get("daskWorkerGroups") or {}
        group = DEFAULT_GROUP if worker_group in ("gpu", DEFAULT_GROUP) else worker_group
        if groups and group not in groups:
            raise ConnectError(
                f"worker_group {worker_group!r} is not in this stack; its groups: gpu (default), "
                + ", ".join(g for g in groups if g != DEFAULT_GROUP)
            )
        if (groups.get(group) or {}).get("autoscaled") and not force:
            raise ConnectError(
                f"worker group {worker_group!r} is autoscaled: KubeCluster.scale() would delete its DaskAutoscaler "
                "(pulumi up recreates it). Change dask.autoscale in the stack config, or pass force=True"
            )
        self._kube_cluster().scale(n, worker_group=group)

    def close(self) -> None:
        self.client.close()
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
        if self._kube is not None:
            self._kube.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> StackConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked(client: Client, check_versions: bool) -> Client:
    if check_versions:
        skew = version_skew(versions(client))
        if skew:
            client.close()
            raise ConnectError(
                "version skew between this client and the cluster ("
                + "; ".join(skew)
                + "): pickled tasks can fail in odd ways. Install the cluster's versions here, "
                "or pass check_versions=False"
            )
    return client


def connect(
    stack: str | None = None,
    outputs: str | Path | Mapping[str, Any] | None = None,
    timeout: float = 10.0,
    check_versions: bool = True,
) -> StackConnection:
    """A connected client for the stack's DaskCluster (see the module docstring)."""
    data = stack_outputs(stack, outputs)
    tls_dir = tempfile.TemporaryDirectory(prefix="gpudask-tls-") if data.get("tlsCaCertPem") else None
    security = security_from(data, Path(tls_dir.name)) if tls_dir else None
    try:
        return _connect(data, security, tls_dir, timeout, check_versions)
    except BaseException:
        if tls_dir:
            tls_dir.cleanup()
        raise


def _connect(
    data: dict[str, Any],
    security: Security | None,
    tls_dir: tempfile.TemporaryDirectory[str] | None,
    timeout: float,
    check_versions: bool,
) -> StackConnection:
    addresses = candidate_addresses(data)
    for address in addresses:
        if reachable(address, timeout=min(timeout, 3.0)):
            client = _checked(Client(address, timeout=timeout, security=security), check_versions)
            return StackConnection(client, data, address, _tls_dir=tls_dir)
    name, namespace = data["daskClusterName"], data["daskNamespace"]
    try:
        cluster = KubeCluster.from_name(name, namespace=namespace)
    except Exception as err:
        raise ConnectError(
            f"{' and '.join(addresses)} not reachable from here (they are for clients inside the cluster or VPC), "
            f"and KubeCluster.from_name({name!r}, namespace={namespace!r}) failed: {err}. From a laptop: "
            "`pulumi stack output kubeconfig --show-secrets > kubeconfig; export KUBECONFIG=$PWD/kubeconfig`, "
            f"or `kubectl port-forward -n {namespace} svc/{name}-scheduler 8786:8786` and pass "
            f"outputs with schedulerAddress {addresses[0].split('://', 1)[0]}://localhost:8786"
        ) from err
    try:
        if security is None:
            client = Client(cluster, timeout=timeout)
        else:
            # The operator's port-forward speaks plain TCP to the pod; the TLS session runs inside it.
            forwarded = str(cluster.scheduler_address).replace("tcp://", "tls://", 1)
            client = Client(forwarded, timeout=timeout, security=security)
        client = _checked(client, check_versions)
    except BaseException:
        cluster.close()
        raise
    return StackConnection(client, data, "port-forward", cluster=cluster, _tls_dir=tls_dir)
