"""The gateway: carriers' own topics (ingress, egress), the carrier registry, webhooks."""
