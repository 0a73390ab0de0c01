"""Runs pipeline tasks concurrently through the engine. Placeholder."""

from __future__ import annotations

from imaged.engine.core import Engine
from imaged.fetch.client import Fetcher
from imaged.settings import Settings


class PipelineRunner:
    def __init__(self, settings: Settings, engine: Engine, fetcher: Fetcher | None) -> None:
        self.settings = settings
        self.engine = engine
        self.fetcher = fetcher

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine, fetcher: Fetcher | None
    ) -> PipelineRunner:
        return cls(settings, engine, fetcher)

    async def close(self) -> None:
        return None
