"""Parse and serialise the raw evidence formats, byte-exact both ways: bytes in, dataclasses out, and back.

`sgx` (DCAP quote v3), `tdx` (quote v4/v5), `snp` (attestation report v2/v3/v5, certificate table), `nitro`
(COSE_Sign1 attestation document). Every reader raises `FormatError` naming the field on bad input.
"""
