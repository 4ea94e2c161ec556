"""The Textual front-end: chat, templates and analytics screens over the in-process core."""
