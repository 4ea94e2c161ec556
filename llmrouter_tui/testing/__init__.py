"""Test helpers shipped with the app: a fake LLM upstream (also used by `--demo`)."""

from llmrouter_tui.testing.fake_upstream import (
    FAULT_KINDS,
    FakeUpstream,
    Fault,
    SeenRequest,
    default_reply,
)

__all__ = ["FAULT_KINDS", "FakeUpstream", "Fault", "SeenRequest", "default_reply"]
