"""The rehearsal's TLS files come from the one local CA (gpudask/local/pki.py) and hold exactly
what the stack's Secret holds: a CA certificate and each role's certificate and key."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gpudask.local.procs import LOOPBACK
from gpudask.local.rehearse import TLS_ROLES, write_tls_files


def test_the_rehearsal_tls_files_are_the_secrets_and_signed_by_one_ca(tmp_path: Path) -> None:
    files = write_tls_files(tmp_path / "tls")
    expected = {"ca.pem"} | {f"{role}{suffix}.pem" for role in TLS_ROLES for suffix in ("", "-key")}
    assert {p.name for p in (tmp_path / "tls").iterdir()} == expected  # no CA key beside them
    ca = x509.load_pem_x509_certificate(files["ca"].read_bytes())
    for role in TLS_ROLES:
        cert = x509.load_pem_x509_certificate(files[role].read_bytes())
        cert.verify_directly_issued_by(ca)
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages), role
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in names.get_values_for_type(x509.DNSName), role
        assert LOOPBACK in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)], role
        assert stat.S_IMODE(files[f"{role}-key"].stat().st_mode) == 0o600, role
