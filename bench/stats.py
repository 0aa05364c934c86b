"""Figures the benchmarks share (kept for the scripts that import it from here; the
percentile lives in bench/support.py with the rest of the benches' boilerplate)."""

from __future__ import annotations

from bench.support import pct

__all__ = ["pct"]
