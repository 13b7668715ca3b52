"""`make bench`: every benchmark, each printing its table with ratios to a ceiling
measured in the same run. Run one alone with `python -m bench.<name> --help`."""

from __future__ import annotations

import sys

from rich.console import Console

from bench import (
    booking_decide,
    booking_throughput,
    demo_month,
    dispatch_solver,
    gateway_batches,
    relay_publish,
    reporting_aggregation,
)


def main() -> None:
    console = Console()
    console.rule(
        "dispatch: wave planning (PyVRP vs OR-Tools vs VROOM vs greedy, against the best found)"
    )
    dispatch_solver.main([])
    console.rule("reporting: monthly aggregation (report vs one hand-written SQL query)")
    sys.argv = [sys.argv[0]]
    reporting_aggregation.main()
    console.rule("booking: decisions/s, CPU per decision, latency, processes (vs a plain consumer)")
    booking_throughput.main([])
    console.rule("booking: CPU per decision on the consumer's own path, without Kafka")
    booking_decide.main([])
    console.rule("gateway: CPU per batch of egress and webhook sender (vs 10 routes planned)")
    gateway_batches.main([])
    console.rule("outbox relay: CPU per published record, a pass as one batch vs per record")
    relay_publish.main([])
    console.rule("demo: a simulated month, with the machine's cores and on one core")
    demo_month.main([])


if __name__ == "__main__":
    main()
