"""Attributes the server derives from a registered X.509 certificate (KMIP 2.1 certificate attributes)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

_FIELDS = (
    (NameOID.COMMON_NAME, "CN"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.EMAIL_ADDRESS, "Email"),
    (NameOID.COUNTRY_NAME, "C"),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.USER_ID, "UID"),
    (NameOID.SERIAL_NUMBER, "SerialNumber"),
    (NameOID.TITLE, "Title"),
    (NameOID.DOMAIN_COMPONENT, "DC"),
    (NameOID.DN_QUALIFIER, "DNQualifier"),
)


def parse(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise KmipError(ResultReason.InvalidField, "the certificate is not a valid DER X.509 certificate") from None


def certificate_attributes(der: bytes) -> list[TTLV]:
    """The subject and issuer name parts, as attribute items."""
    cert = parse(der)
    items: list[TTLV] = []
    for prefix, name in (("CertificateSubject", cert.subject), ("CertificateIssuer", cert.issuer)):
        for oid, suffix in _FIELDS:
            tag = getattr(Tag, prefix + suffix)
            for attr in name.get_attributes_for_oid(oid):
                value = attr.value if isinstance(attr.value, str) else attr.value.hex()
                items.append(TTLV(tag, ItemType.TextString, value))
    return items
