"""The two failures the crypto layer reports, kept apart because the server answers them differently.

`CryptoError` is a cryptographic failure on valid input (authentication tag mismatch, bad padding, a wrapped key
that does not unwrap): KMIP `CryptographicFailure`. `BadParameters` means the request itself cannot be served
(unsupported algorithm or mode, wrong key, IV or tag length): a KMIP parameter error. Messages are meant to be
shown to clients, so they never contain key bytes, plaintext or anything derived from them.
"""

from __future__ import annotations


class CryptoError(Exception):
    """A cryptographic operation failed on well-formed input; mapped to KMIP CryptographicFailure."""


class BadParameters(Exception):
    """The algorithm, mode or lengths asked for cannot be used; mapped to a KMIP parameter error."""


class MissingIV(BadParameters):
    """A mode that needs an IV, counter or nonce to decrypt was given none.

    A subclass so that the server can answer it as the OASIS vectors expect (`InvalidMessage`, "missing-iv",
    CS-BC-M-11/12/13) while callers catching `BadParameters` still see it.
    """
