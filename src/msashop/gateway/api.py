"""HTTP in: /api/* and the JWKS forwarded to the owning service, the web UI at /."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from msashop.chassis import context
from msashop.chassis.auth import bearer_token
from msashop.chassis.errors import NotFound
from msashop.chassis.service import Service
from msashop.gateway.faults import abort_response
from msashop.gateway.headers import upstream_headers
from msashop.gateway.mesh import Mesh
from msashop.gateway.proxy import Upstreams

router = APIRouter()

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

# The storefront loads only its own files; nothing inline, nothing from elsewhere.
UI_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@router.api_route("/api/{path:path}", methods=METHODS, include_in_schema=False)
async def forward_api(request: Request) -> Response:
    return await _forward(request)


@router.get("/.well-known/jwks.json", include_in_schema=False)
async def forward_jwks(request: Request) -> Response:
    return await _forward(request)


@router.get("/", include_in_schema=False)
async def storefront(request: Request) -> FileResponse:
    return FileResponse(request.app.state.web_dir / "index.html", headers=UI_HEADERS)


async def _forward(request: Request) -> Response:
    # The raw path, so percent-encoded ids reach the service exactly as the client wrote them.
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    mesh: Mesh = request.app.state.mesh
    plan = mesh.plan(request.method, raw_path.decode("latin-1"), request.headers)
    if plan is None:
        raise NotFound(f"no service serves {request.url.path}")
    service: Service = request.app.state.service
    upstreams: Upstreams = request.app.state.upstreams
    # Checked here to keep bad tokens at the edge; the service checks it again (zero trust).
    token = bearer_token(request)
    principal = await service.verifier.verify(token) if token else None
    fault = mesh.faults(plan)
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.abort is not None:
        return abort_response(fault.abort, plan.service)
    body = await upstreams.read_body(request)
    headers = upstream_headers(
        request.headers.items(),
        principal=principal,
        request_id=context.request_id.get(),
        client_ip=request.client.host if request.client else None,
        proto=request.url.scheme,
    )
    query = request.scope.get("query_string", b"").decode("latin-1")
    return await upstreams.forward(service.discovery, plan, request.method, query, headers, body)
