"""Reading the Prometheus text exposition in tests with the client library's own parser
(`prometheus_client.parser`), and the exact change of a sample between two scrapes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Samples:
    """Every sample of one scrape: (sample name, sorted label pairs) → value; and the type
    each metric family was declared with."""

    values: Mapping[tuple[str, tuple[tuple[str, str], ...]], float]
    types: Mapping[str, str]

    def get(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a series that does not exist (yet)."""
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: v for (n, labels), v in self.values.items() if n == name}


def parse(text: str) -> Samples:
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in values, f"duplicate sample {key}"
            values[key] = sample.value
    return Samples(values, types)


def scrape(metrics_url: str) -> Samples:
    response = httpx.get(f"{metrics_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return parse(response.text)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    change = after.get(name, **labels) - before.get(name, **labels)
    assert math.isfinite(change)
    return change
