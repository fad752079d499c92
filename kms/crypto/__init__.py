"""Algorithm choice and parameters over `cryptography`.

Knows nothing of HTTP, storage or KMIP messages: callers pass key bytes, the key's CryptographicAlgorithm and the
request's CryptographicParameters, and get bytes back or `errors.CryptoError` / `errors.BadParameters`.
"""
