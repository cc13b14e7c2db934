"""geomask benchmarks: ``make bench`` (``python -m benchmarks``). Timings stay out of the test suite."""
