"""Mutual TLS for one DaskCluster: a private CA and scheduler, worker and client certificates
from pulumi-tls, the server-side ones in a Kubernetes Secret mounted into the pods."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import security_spec
from components.type_aliases import with_old_type

KEY_ALGORITHM, KEY_CURVE = "ECDSA", "P256"
CA_VALIDITY_HOURS = 10 * 365 * 24
CERT_VALIDITY_HOURS = 365 * 24
# `pulumi up` within this window of expiry replaces the certificate (and rolls the Secret).
EARLY_RENEWAL_HOURS = 30 * 24
LEAF_USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]


@dataclass(frozen=True)
class DaskTlsArgs:
    dask_cluster: str
    """The DaskCluster the certificates are for: names the CA, the certificates and the Secret."""
    namespace: str
    """The DaskCluster's namespace: where the Secret goes, and part of the certificates' names."""
    after: Sequence[pulumi.Resource] = ()
    """What the Secret waits for (the namespace, when this stack creates it). Omitted -> nothing."""


class DaskTls(pulumi.ComponentResource):
    """CA + certificates; `secret` holds what the scheduler and workers mount."""

    TYPE_TOKEN = "gpu-dask:dask_tls:DaskTls"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:dask:DaskTls"

    ca_cert_pem: pulumi.Output[str]
    certificates_digest: pulumi.Output[str]
    """sha256 of the CA, scheduler and worker certificates: changes exactly when a renewal
    (or a new CA) changes what the pods must load."""
    client_cert_pem: pulumi.Output[str]
    client_key_pem: pulumi.Output[str]
    secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: DaskTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        child = pulumi.ResourceOptions(parent=self)

        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject={"common_name": f"{args.dask_cluster} Dask CA", "organization": "gpu-dask"},
            validity_period_hours=CA_VALIDITY_HOURS,
            early_renewal_hours=EARLY_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        keys: dict[str, tls.PrivateKey] = {}
        certs: dict[str, tls.LocallySignedCert] = {}
        for role, spec in security_spec.certificate_specs(args.dask_cluster, args.namespace).items():
            keys[role] = tls.PrivateKey(
                f"{name}-{role}-key", algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=child
            )
            request = tls.CertRequest(
                f"{name}-{role}-csr",
                private_key_pem=keys[role].private_key_pem,
                subject={"common_name": spec.common_name, "organization": "gpu-dask"},
                dns_names=list(spec.dns_names),
                opts=child,
            )
            certs[role] = tls.LocallySignedCert(
                f"{name}-{role}-cert",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=CERT_VALIDITY_HOURS,
                early_renewal_hours=EARLY_RENEWAL_HOURS,
                allowed_uses=LEAF_USES,
                opts=child,
            )

        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=cast(Any, security_spec.tls_secret_metadata(args.dask_cluster, args.namespace)),
            type="Opaque",
            string_data={
                "ca.pem": ca.cert_pem,
                "scheduler.pem": certs["scheduler"].cert_pem,
                "scheduler-key.pem": keys["scheduler"].private_key_pem,
                "worker.pem": certs["worker"].cert_pem,
                "worker-key.pem": keys["worker"].private_key_pem,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.ca_cert_pem = ca.cert_pem
        self.certificates_digest = pulumi.Output.all(
            ca.cert_pem, certs["scheduler"].cert_pem, certs["worker"].cert_pem
        ).apply(lambda pems: hashlib.sha256("".join(pems).encode()).hexdigest())
        self.client_cert_pem = certs["client"].cert_pem
        self.client_key_pem = pulumi.Output.secret(keys["client"].private_key_pem)
        self.register_outputs(
            {"caCertPem": self.ca_cert_pem, "clientCertPem": self.client_cert_pem, "clientKeyPem": self.client_key_pem}
        )
