"""HTTP in: the web UI at /, the trace page at /traces and the platform's OpenAPI document (the
proxied paths are `forward.py`'s raw ASGI endpoint)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from msashop.gateway.openapi import PlatformDocument

router = APIRouter()

# The Content-Security-Policy (own files only, nothing inline) and the other security headers
# are on every answer (security_headers.py).
UI_HEADERS = {"Cache-Control": "no-cache"}


@router.get("/", include_in_schema=False)
async def storefront(request: Request) -> FileResponse:
    return FileResponse(request.app.state.web_dir / "index.html", headers=UI_HEADERS)


@router.get("/traces", include_in_schema=False)
async def traces_page(request: Request) -> FileResponse:
    """The trace store's page (traces.js reads /api/traces, which needs an admin's token)."""
    return FileResponse(request.app.state.web_dir / "traces.html", headers=UI_HEADERS)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    """Every service's API at the gateway's paths (openapi.py); /docs shows it."""
    document: PlatformDocument = request.app.state.platform_openapi
    return JSONResponse(await document.get())
