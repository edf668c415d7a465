"""Read an exposition back with prometheus_client's own parser, for exact assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]


class Exposition:
    """Samples by name; `value(name, **labels)` finds the one sample whose labels include those."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, Labels, float]] = []
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples.append((sample.name, dict(sample.labels), sample.value))

    def find(self, name: str, **labels: str) -> list[tuple[Labels, float]]:
        """Every sample of `name` whose labels include `labels`."""
        return [
            (have, value)
            for sample_name, have, value in self.samples
            if sample_name == name and all(have.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The value of exactly one matching sample."""
        found = self.find(name, **labels)
        assert len(found) == 1, f"{name}{labels}: expected one sample, found {found}"
        return found[0][1]

    def has(self, name: str, **labels: str) -> bool:
        """Whether any sample matches."""
        return bool(self.find(name, **labels))

    def state(self, **labels: str) -> str:
        """The one canonical state at 1 for a sync, checking the other six are 0."""
        found = self.find("sync_state", **labels)
        assert len(found) == 7, found
        on = [have["state"] for have, value in found if value == 1.0]
        assert len(on) == 1 and all(v in (0.0, 1.0) for _, v in found), found
        return on[0]
