"""HTTP in: the web UI at / (the proxied paths are `forward.py`'s raw ASGI endpoint)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

router = APIRouter()

# The storefront loads only its own files; nothing inline, nothing from elsewhere.
UI_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/", include_in_schema=False)
async def storefront(request: Request) -> FileResponse:
    return FileResponse(request.app.state.web_dir / "index.html", headers=UI_HEADERS)
