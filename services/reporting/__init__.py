"""Reporting: projections of booking and dispatch events, the emissions methodology, and
the monthly emissions-savings report per city (see docs/methodology.md)."""
