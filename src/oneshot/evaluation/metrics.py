"""Accuracy with its number of trials and a 95 % Wilson confidence interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Accuracy", "wilson_interval"]

Z95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, as fractions in [0, 1]."""
    if total <= 0:
        raise ValueError(f"total={total}; at least one trial needed for an interval")
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``total`` trials; ``value``, ``low`` and ``high`` are percentages."""

    correct: int
    total: int

    @property
    def value(self) -> float:
        return 100.0 * self.correct / self.total

    @property
    def interval(self) -> tuple[float, float]:
        lo, hi = wilson_interval(self.correct, self.total)
        return 100.0 * lo, 100.0 * hi

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{self.value:.1f} % [{lo:.1f}, {hi:.1f}] (n={self.total})"

    def to_dict(self) -> dict:
        lo, hi = self.interval
        return {"accuracy": round(self.value, 4), "ci95_low": round(lo, 4),
                "ci95_high": round(hi, 4), "correct": self.correct, "tasks": self.total}
