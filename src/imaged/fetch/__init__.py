"""The outbound fetch client and its SSRF guard (fetch-and-security.md)."""

from imaged.fetch.result import FetchResult, NotModified

__all__ = ["FetchResult", "NotModified"]
