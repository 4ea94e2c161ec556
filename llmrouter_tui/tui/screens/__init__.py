"""Screens and modal dialogs of the llmrouter-tui app (one per module, each with a .tcss)."""
