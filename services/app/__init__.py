"""The composition root: the one place that knows every service and assembles them into
processes (the registry, the CLI, the demo, the platform of one process). Nothing below
imports it."""
