"""The testbed's keys and certificates: a signing key per site, and TLS between the proxies.

``testbed up`` makes, once, in ``<state>/pki/``: a private CA (``ca.crt``, ``ca.key``), and for
each site its Ed25519 signing key (``<site>.key``, what ``edgescope proxy keygen`` makes) and a
TLS certificate for its peer listener (``<site>.crt``, ``<site>-tls.key``, ECDSA P-256, signed
by the CA, valid for the site's address). It is also the site directory's authority
(``directory-authority.key``): it endorses each site's signing key (``<site>.endorsement``), so
a site that joins later is admitted by every other site's directory. Existing files are kept,
so restarts keep every key.

    security = Pki(state / "pki").ensure(plans)
    security["Paris"].public_key        # 'ed25519:...', for the peers' [[peers]] entries
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgescope.directory import model
from edgescope.proxy import keys
from edgescope.testbed.layout import SitePlan

VALID_DAYS = 3650


@dataclass(frozen=True)
class SiteSecurity:
    """What one site's proxy config names."""

    key_file: Path
    public_key: str
    cert_file: Path
    tls_key_file: Path
    ca_file: Path
    endorsement_file: Path
    """The directory authority's endorsement of the site's signing key."""
    authority: str
    """The directory authority's public key, which every site trusts."""


class Pki:
    """Keys and certificates of one testbed, kept in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca_file = root / "ca.crt"
        self._ca_key_file = root / "ca.key"
        self._authority_file = root / "directory-authority.key"

    def ensure(self, plans: Sequence[SitePlan]) -> dict[str, SiteSecurity]:
        """Every site's keys and certificate, made where missing."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_key, ca_cert = self._ca()
        return {plan.name: self._site(plan, ca_key, ca_cert) for plan in plans}

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if self.ca_file.exists() and self._ca_key_file.exists():
            key = serialization.load_pem_private_key(self._ca_key_file.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key, x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgescope testbed CA")])
        cert = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write(self._ca_key_file, _pem(key))
        self.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    def _site(
        self, plan: SitePlan, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
    ) -> SiteSecurity:
        key_file = self.root / f"{plan.name}.key"
        if not key_file.exists():
            _write(key_file, keys.private_pem(keys.generate()))
        signing = keys.load_private_file(key_file)
        cert_file = self.root / f"{plan.name}.crt"
        tls_key_file = self.root / f"{plan.name}-tls.key"
        if not (cert_file.exists() and tls_key_file.exists()) or not _covers(
            cert_file, plan.bind_host
        ):
            tls_key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{plan.name} proxy")])
            cert = (
                _builder(name, ca_cert.subject, tls_key.public_key())
                .add_extension(
                    x509.SubjectAlternativeName(
                        [
                            x509.IPAddress(ipaddress.ip_address(plan.bind_host)),
                            x509.DNSName(f"{plan.name.lower()}.edgescope.test"),
                        ]
                    ),
                    critical=False,
                )
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                    ),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            _write(tls_key_file, _pem(tls_key))
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return SiteSecurity(
            key_file,
            keys.public_text(signing.public_key()),
            cert_file,
            tls_key_file,
            self.ca_file,
            self._endorsement(plan.name, signing.public_key()),
            keys.public_text(self.authority().public_key()),
        )

    def authority(self) -> keys.Ed25519PrivateKey:
        """The directory authority's key (made once)."""
        if not self._authority_file.exists():
            _write(self._authority_file, keys.private_pem(keys.generate()))
        return keys.load_private_file(self._authority_file)

    def _endorsement(self, site: str, site_key: keys.Ed25519PublicKey) -> Path:
        path = self.root / f"{site}.endorsement"
        try:
            current = json.loads(path.read_text())
        except (OSError, ValueError):
            current = {}
        if current.get("public_key") != keys.public_text(site_key):
            expires = time.time() + VALID_DAYS * 86400
            cert = model.endorse(self.authority(), site, site_key, expires=expires)
            path.write_text(model.canonical(cert.to_json()).decode())
        return path


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _covers(cert_file: Path, address: str) -> bool:
    """Whether the certificate is valid for ``address`` (a site moved to the WAN is not)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ipaddress.ip_address(address) in names.get_values_for_type(x509.IPAddress)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)
