"""HTTP in: the web UI at / and the platform's OpenAPI document (the proxied paths are
`forward.py`'s raw ASGI endpoint)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from msashop.gateway.openapi import PlatformDocument

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


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    """Every service's API at the gateway's paths (openapi.py); /docs shows it."""
    document: PlatformDocument = request.app.state.platform_openapi
    return JSONResponse(await document.get())
