"""From stack outputs to a `distributed.Client` in one line.

    from gpudask.client import connect
    conn = connect.connect(stack="dev")             # `pulumi stack output` when the CLI is here
    conn = connect.connect(outputs="outputs.json")  # or a saved `pulumi stack output --json`
    conn.client.submit(...); conn.scale(2, worker_group="gpu")

The direct `schedulerAddress` is used when it is reachable (inside the cluster, or the
internal load balancer from the VPC); otherwise the scheduler Service is port-forwarded
through the API server (kr8s, as `kubectl port-forward` does) and the client connects to the
forwarded loopback port with the stack's own scheme: `tls://` and the stack's certificates
for a TLS stack. Not `KubeCluster.from_name`: its address is always `tcp://`
(dask_kubernetes/operator/networking.py), so against a TLS scheduler it retries forever.
`conn.scale()` patches the group's DaskWorkerGroup through the API: no scheduler connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

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
SCHEDULER_PORT = 8786
LOOPBACK = "127.0.0.1"


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
    _forward: Any = field(default=None, repr=False)  # the kr8s PortForward behind `via == "port-forward"`
    _tls_dir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    timeout: float = 10.0

    @property
    def dashboard_command(self) -> str:
        """How a person reaches the dashboard: 8787 is open to the operator's namespace only."""
        name, namespace = self.outputs["daskClusterName"], self.outputs["daskNamespace"]
        return f"kubectl port-forward -n {namespace} svc/{name}-scheduler 8787:8787, then http://localhost:8787/status"

    def scale(self, n: int, worker_group: str = "gpu", force: bool = False) -> None:
        """Set a worker group's replicas through the Kubernetes API, like the seed's `scale(n, worker_group=...)`.

        `"gpu"` (or `"default"`) is the DaskCluster's own GPU group; other names are the
        stack's `dask.workerGroups` keys. This patches the group's `DaskWorkerGroup` (the
        operator then adds or retires workers); it never talks to the scheduler, so it works
        with TLS, and it never touches the DaskAutoscaler of another group (upstream
        `KubeCluster.scale()` deletes the cluster's autoscaler whatever group it scales).
        The autoscaled group is refused unless `force`, which deletes its DaskAutoscaler first
        (the next `pulumi up --refresh` recreates it). Replicas set by hand revert at the next
        `pulumi up` that changes the group.
        """
        groups: dict[str, Any] = self.outputs.get("daskWorkerGroups") or {}
        group = DEFAULT_GROUP if worker_group in ("gpu", DEFAULT_GROUP) else worker_group
        problems = []
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            problems.append(f"n must be a whole number >= 0, got {n!r}")
        if groups and group not in groups:
            problems.append(
                f"worker_group {worker_group!r} is not in this stack; its groups: gpu (default), "
                + ", ".join(g for g in groups if g != DEFAULT_GROUP)
            )
        if problems:
            raise ConnectError("; ".join(problems))
        autoscaled = bool((groups.get(group) or {}).get("autoscaled"))
        if autoscaled and not force:
            raise ConnectError(
                f"worker group {worker_group!r} is autoscaled: scaling it by hand means deleting its DaskAutoscaler "
                "(pulumi up --refresh recreates it). Change dask.autoscale in the stack config, or pass force=True"
            )
        name, namespace = self.outputs["daskClusterName"], self.outputs["daskNamespace"]
        _with_deadline(
            _scale_group(name, namespace, group, n, delete_autoscaler=autoscaled),
            self.timeout,
            f"setting DaskWorkerGroup {namespace}/{name}-{group} to {n} replicas through the Kubernetes API",
        )

    def close(self) -> None:
        self.client.close()
        if self._forward is not None:
            self._forward.stop()
            self._forward = None
        if self._tls_dir is not None:
            self._tls_dir.cleanup()

    def __enter__(self) -> StackConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_deadline[T](coroutine: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
    """Run a Kubernetes API coroutine on a loop of its own, giving up after `timeout` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout)

    try:
        # A thread of its own: the caller may run a loop, and asyncio.run() here would leave
        # the caller's thread without a current event loop.
        return _in_thread(bounded)
    except TimeoutError as err:
        raise ConnectError(f"gave up after {timeout:g} s {what}") from err
    except ConnectError:
        raise
    except Exception as err:  # kr8s' API, auth and not-found errors, said with what was being done
        raise ConnectError(f"{what} failed: {type(err).__name__}: {err}") from err


def _in_thread[T](make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread, raised there
            failure.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


async def _scale_group(name: str, namespace: str, group: str, n: int, delete_autoscaler: bool) -> None:
    import kr8s
    from dask_kubernetes.operator._objects import DaskAutoscaler, DaskWorkerGroup

    if delete_autoscaler:
        # The operator's DaskAutoscaler is named after the cluster and scales its default group.
        with contextlib.suppress(kr8s.NotFoundError):
            autoscaler = await DaskAutoscaler.get(name, namespace=namespace)
            await autoscaler.delete()
    group_object = await DaskWorkerGroup.get(f"{name}-{group}", namespace=namespace)
    await group_object.patch({"spec": {"worker": {"replicas": n}}})


async def _scheduler_service(name: str, namespace: str) -> Any:
    from kr8s.objects import Service

    # The sync kr8s object, whose port-forward runs in a thread of its own.
    return await asyncio.to_thread(Service.get, f"{name}-scheduler", namespace=namespace)


def forward_scheduler(name: str, namespace: str, timeout: float) -> tuple[Any, int]:
    """Port-forward the scheduler Service's 8786 to a free loopback port (kr8s, through the API
    server, as `kubectl port-forward` does); the forward and its port once it accepts connections."""
    service = _with_deadline(
        _scheduler_service(name, namespace), timeout, f"reading Service {namespace}/{name}-scheduler"
    )
    # "auto": kr8s picks the local port and binds it at once (no window between pick and bind).
    forward = service.portforward(SCHEDULER_PORT, local_port="auto")
    forward.start()
    deadline = time.monotonic() + timeout
    while not (forward.local_port and reachable(f"tcp://{LOOPBACK}:{forward.local_port}", timeout=0.5)):
        if time.monotonic() > deadline:
            forward.stop()
            listening = f"on {LOOPBACK}:{forward.local_port}" if forward.local_port else "on a loopback port"
            raise ConnectError(
                f"gave up after {timeout:g} s waiting for the port-forward of {namespace}/{name}-scheduler "
                f"to listen {listening}"
            )
        time.sleep(0.1)
    return forward, int(forward.local_port)


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


def _client(address: str, security: Security | None, timeout: float, route: str) -> Client:
    """`Client(address)` bounded by `timeout`, its failure said with the address and the route."""
    try:
        return Client(address, timeout=timeout, security=security)
    except (OSError, TimeoutError) as err:
        hint = (
            " (a tls:// scheduler refuses plain tcp://, and needs the stack's CA and client certificate)"
            if security is None
            else ""
        )
        raise ConnectError(
            f"no Dask scheduler answered at {address} ({route}) within {timeout:g} s: {err}{hint}"
        ) from err


def connect(
    stack: str | None = None,
    outputs: str | Path | Mapping[str, Any] | None = None,
    timeout: float = 10.0,
    check_versions: bool = True,
    port_forward: bool | None = None,
) -> StackConnection:
    """A connected client for the stack's DaskCluster (see the module docstring).

    `port_forward`: None tries the direct addresses first, then the port-forward; True goes
    straight to the port-forward; False never port-forwards. Every wait is bounded by `timeout`.
    """
    data = stack_outputs(stack, outputs)
    tls_dir = tempfile.TemporaryDirectory(prefix="gpudask-tls-") if data.get("tlsCaCertPem") else None
    security = security_from(data, Path(tls_dir.name)) if tls_dir else None
    try:
        return _connect(data, security, tls_dir, timeout, check_versions, port_forward)
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
    port_forward: bool | None,
) -> StackConnection:
    addresses = candidate_addresses(data)
    scheme = addresses[0].split("://", 1)[0]
    if port_forward is not True:
        for address in addresses:
            if reachable(address, timeout=min(timeout, 3.0)):
                client = _checked(_client(address, security, timeout, "direct"), check_versions)
                return StackConnection(client, data, address, _tls_dir=tls_dir, timeout=timeout)
        if port_forward is False:
            raise ConnectError(f"{' and '.join(addresses)} not reachable from here within {min(timeout, 3.0):g} s")
    name, namespace = data["daskClusterName"], data["daskNamespace"]
    try:
        forward, port = forward_scheduler(name, namespace, timeout)
    except ConnectError as err:
        raise ConnectError(
            f"{' and '.join(addresses)} not reachable from here (they are for clients inside the cluster or VPC), "
            f"and the port-forward of {namespace}/{name}-scheduler failed: {err}. From a laptop: "
            "`pulumi stack output kubeconfig --show-secrets > kubeconfig; export KUBECONFIG=$PWD/kubeconfig`, "
            f"or `kubectl port-forward -n {namespace} svc/{name}-scheduler 8786:8786` and pass "
            f"outputs with schedulerAddress {scheme}://localhost:8786"
        ) from err
    try:
        # The forward carries bytes; the TLS session (when the stack has one) runs inside it, so the
        # address keeps the stack's scheme (KubeCluster.from_name always builds tcp://).
        address = f"{scheme}://{LOOPBACK}:{port}"
        client = _checked(_client(address, security, timeout, "port-forward"), check_versions)
    except BaseException:
        forward.stop()
        raise
    return StackConnection(client, data, "port-forward", _forward=forward, _tls_dir=tls_dir, timeout=timeout)
