"""A local certificate for ``eco2 up --tls`` (``ECO2_TLS``): HTTPS for development.

Browsers send the ``Secure`` cookies of an HTTPS gateway only to HTTPS pages, and an HTTPS page
(the PWA's Vite dev server, ``https://localhost:5173``) may not call an ``http://`` API. So the
gateway can serve HTTPS with a certificate made here, offline, and kept under the data dir:

- ``<data_dir>/tls/ca.pem`` — a small local certificate authority (trust it in the browser or
  OS to get rid of the warning; its key never leaves the folder);
- ``<data_dir>/tls/cert.pem`` + ``key.pem`` — the server certificate it signed, for
  ``localhost``, ``127.0.0.1``, ``::1`` and the configured host.

The files are made once and reused while they cover the hosts and have a month left.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
VALID_DAYS = 825  # the longest lifetime browsers accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)
_ANY_ADDRESS = {"0.0.0.0", "::", ""}


@dataclass(frozen=True)
class LocalCertificate:
    ca: Path
    cert: Path
    key: Path


def tls_dir(data_dir: Path) -> Path:
    return data_dir / "tls"


def certificate_paths(data_dir: Path) -> LocalCertificate:
    folder = tls_dir(data_dir)
    return LocalCertificate(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")


def hosts_for(host: str) -> tuple[str, ...]:
    """The names the certificate must cover when serving on ``host``."""
    extra = () if host in _ANY_ADDRESS or host in LOCAL_HOSTS else (host,)
    return (*LOCAL_HOSTS, *extra)


def ensure_local_certificate(data_dir: Path, host: str = "127.0.0.1") -> LocalCertificate:
    """The local CA and server certificate under ``data_dir`` (made when missing, expiring
    or not covering ``host``)."""
    paths = certificate_paths(data_dir)
    hosts = hosts_for(host)
    if _usable(paths, hosts):
        return paths
    paths.cert.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Eco² local development"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Eco² local CA"),
    ])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths.key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), private=True)
    _write(paths.ca, ca.public_bytes(serialization.Encoding.PEM))
    _write(paths.cert, cert.public_bytes(serialization.Encoding.PEM)
           + ca.public_bytes(serialization.Encoding.PEM))  # the chain: leaf, then its CA
    return paths


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _usable(paths: LocalCertificate, hosts: tuple[str, ...]) -> bool:
    if not (paths.ca.exists() and paths.cert.exists() and paths.key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(n) for n in names.get_values_for_type(x509.DNSName)}
    covered |= {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > RENEW_BEFORE and all(h in covered for h in hosts)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)
