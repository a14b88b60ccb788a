"""Counts of what sampling gave: accepted, repaired, rejected as invalid, rejected over budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SampleStats:
    """Running counts over calls of :func:`search.sampling.sample.sample_point`.

    ``repaired`` counts points that became valid specs only after a deterministic repair (they may
    still be rejected over budget); ``rejected_invalid`` points had no repair; ``rejected_budget``
    points were valid but too large. ``accepted = sampled - rejected_invalid - rejected_budget``.
    """

    sampled: int = 0
    repaired: int = 0
    rejected_invalid: int = 0
    rejected_budget: int = 0

    @property
    def accepted(self) -> int:
        return self.sampled - self.rejected_invalid - self.rejected_budget

    def rates(self) -> dict[str, float]:
        """Each count as a fraction of ``sampled`` (0 when nothing was sampled)."""
        total = max(self.sampled, 1)
        counts = asdict(self) | {"accepted": self.accepted}
        return {key: value / total for key, value in counts.items() if key != "sampled"}
