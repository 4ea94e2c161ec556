"""Fetching http(s) image URLs for APIs that only take inline image data (Gemini).

Only reached when the user turned `[routing] fetch_image_urls` on; the router refuses such
URLs by name otherwise. No redirects are followed and the size is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import ProviderFailure

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Gemini's inline request limit


async def fetch_images(urls: Iterable[str], timeout_s: float) -> dict[str, tuple[str, bytes]]:
    """url -> (mime type, bytes). A URL that cannot be fetched as an image is the caller's
    problem: ProviderFailure("bad_request") naming it."""
    import httpx

    fetched: dict[str, tuple[str, bytes]] = {}
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        for url in urls:
            if url in fetched:
                continue
            shown = url if len(url) <= 80 else url[:77] + "..."
            try:
                async with client.stream("GET", url) as response:
                    mime = response.headers.get("content-type", "").split(";")[0].strip()
                    if response.status_code != 200 or not mime.startswith("image/"):
                        raise ProviderFailure(
                            "bad_request",
                            f"image URL {shown} gave HTTP {response.status_code} "
                            f"({mime or 'no content type'}), not an image",
                        )
                    data = bytearray()
                    async for piece in response.aiter_bytes():
                        data += piece
                        if len(data) > MAX_IMAGE_BYTES:
                            raise ProviderFailure(
                                "bad_request",
                                f"image URL {shown} is larger than {MAX_IMAGE_BYTES} bytes",
                            )
            except httpx.HTTPError as exc:
                raise ProviderFailure(
                    "bad_request", f"could not fetch image URL {shown}: {type(exc).__name__}"
                ) from None
            fetched[url] = (mime, bytes(data))
    return fetched
