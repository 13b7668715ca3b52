"""The city simulation: carriers' systems, trucks checking in and vehicles driving the
planned routes, all speaking only the published contracts over Kafka.

``model`` decides *what* happens (pure, seeded), ``driver`` sends it over Kafka on a
simulated clock and waits for the services to settle (``settling``), ``summary`` reads
the outcome back (topics and the reporting HTTP API) and writes the monthly reports.
"""
