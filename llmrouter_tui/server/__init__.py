"""Headless `--serve` mode: the ASGI app (app.py) and the embedded h11 server (http.py)."""
