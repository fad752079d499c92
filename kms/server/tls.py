"""HTTPS material: turn the configured PKCS#12 into the PEM files gunicorn's TLS layer reads."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


def p12_to_pem_files(p12: Path, password: str | None, directory: Path) -> tuple[str, str]:
    """Write cert chain and key (mode 0600) into `directory`; ValueError with a clear message on bad input."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(p12.read_bytes(), password.encode() if password else None)
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot read the PKCS#12 {p12}: wrong password or not a PKCS#12 file ({exc})") from None
    if key is None or cert is None:
        raise ValueError(f"the PKCS#12 {p12} must hold a private key and its certificate")
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    chain = cert.public_bytes(serialization.Encoding.PEM) + b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in extra or ()
    )
    cert_path.write_bytes(chain)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return str(cert_path), str(key_path)
