"""The headless routing core: no UI, no HTTP. Front-ends import from here.

Kept import-light on purpose: SDKs, tiktoken and sqlite work load on first use.
"""
