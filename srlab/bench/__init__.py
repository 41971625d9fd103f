"""Measurement code, run by hand: ``python -m srlab.bench`` (see :mod:`srlab.bench.harness`), one module per section."""
