"""Widgets of the llmrouter-tui app (one per module, each with its own .tcss)."""
