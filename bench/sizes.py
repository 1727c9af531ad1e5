"""What ``bench.run`` measures and ``bench.report`` prints: the run sizes and the result row.

Both modules use these; keeping them here lets the report import no part of the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

POOL = 1000  # distinct fingerprints the timed runs cycle through


@dataclass(frozen=True)
class Size:
    """How long and how big one run of the bench is."""

    name: str
    seconds: float
    reps: int
    fill: tuple[int, int]  # occurrences, issues of the stream / growth database
    small: tuple[int, int]
    storage_single: int
    storage_batch: int
    rate_seconds: float
    get_seconds: float


QUICK = Size("quick", 2, 3, (100_000, 10_000), (10_000, 1_000), 2_000, 10_000, 4, 1)
FULL = Size("full", 8, 5, (1_000_000, 100_000), (10_000, 1_000), 5_000, 50_000, 15, 5)


@dataclass
class Row:
    """One line of the result table."""

    scenario: str
    rate: float | None = None
    p50: float | None = None
    p99: float | None = None
    reference: str = ""
    reference_rate: float | None = None
    rss_mb: float | None = None
    runs: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.rate is None or not self.reference_rate:
            return None
        return self.rate / self.reference_rate
