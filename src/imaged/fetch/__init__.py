"""The outbound fetch client and its SSRF guard (fetch-and-security.md)."""
