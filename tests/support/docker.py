"""Is there a Docker engine that testcontainers could use?"""

from __future__ import annotations

import functools
import os


@functools.cache
def docker_engine_answers() -> bool:
    if os.environ.get("MICROHUB_TEST_NO_DOCKER"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False
