"""The outbound fetch client and its SSRF guard (fetch-and-security.md)."""

from imaged.fetch.result import FetchResult

__all__ = ["FetchResult"]
