"""`--demo`: run the built-in fake upstream in-process for as long as a front-end runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def demo_upstream(enabled: bool) -> Iterator[str | None]:
    """Yield the fake upstream's base URL while it runs, or None when demo mode is off."""
    if not enabled:
        yield None
        return
    from .testing.fake_upstream import FakeUpstream

    fake = FakeUpstream(chunk_delay_s=0.02).start()
    try:
        yield fake.base_url
    finally:
        fake.stop()
