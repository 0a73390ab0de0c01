"""Outbound GET with redirects, limits, timeouts and the SSRF guard. Placeholder."""

from __future__ import annotations

from imaged.errors import FetchError
from imaged.settings import Settings


class Fetcher:
    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        return cls()

    async def fetch(self, url: str) -> bytes:
        raise FetchError("unable to make request", 502)

    async def close(self) -> None:
        return None
