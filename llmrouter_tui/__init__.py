"""llmrouter-tui: route chat prompts to Groq, Gemini and OpenAI-compatible models."""

__version__ = "0.1.0"
