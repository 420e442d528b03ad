"""A throwaway certificate authority and loopback server certificate, generated at start so the sandbox can speak https.

msal only accepts https authorities; its callers trust `TlsMaterial.ca_pem` (e.g. `requests.Session().verify = path`).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
CERTIFICATE_LIFETIME = datetime.timedelta(days=7)
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM texts of the sandbox CA and of the server certificate (with its private key) it signed."""

    ca_pem: str
    certificate_pem: str
    private_key_pem: str

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting the server certificate followed by the CA certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl can only load a certificate chain from files: write them to a private directory that is removed at once.
        with tempfile.TemporaryDirectory(prefix="sandbox-tls-") as folder:
            chain_path = Path(folder) / "chain.pem"
            key_path = Path(folder) / "key.pem"
            chain_path.write_text(self.certificate_pem + self.ca_pem, encoding="ascii")
            key_path.write_text(self.private_key_pem, encoding="ascii")
            key_path.chmod(0o600)
            context.load_cert_chain(certfile=chain_path, keyfile=key_path)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gradebot sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_alternative_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def generate_tls_material(hosts: Sequence[str] = LOOPBACK_NAMES, now: datetime.datetime | None = None) -> TlsMaterial:
    """A fresh CA (never written to disk by us) and a server certificate for `hosts`, valid for a week."""
    issued = (now or datetime.datetime.now(datetime.UTC)) - CLOCK_SKEW_ALLOWANCE
    expires = issued + CERTIFICATE_LIFETIME
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Gradebot sandbox local CA")
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(expires)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(expires)
        .add_extension(_subject_alternative_names(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        ca_pem=ca_certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        certificate_pem=server_certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        private_key_pem=server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
    )
