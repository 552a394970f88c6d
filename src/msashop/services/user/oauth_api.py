"""POST /oauth/token: service tokens by client credentials (RFC 6749 §4.4), for the platform's own
services only. The gateway has no route to it (it maps /api/* and the JWKS, not /oauth).

The client authenticates with HTTP Basic (RFC 6749 §2.3.1) or `client_id` and `client_secret` in
the body, a form (the RFC's encoding) or JSON. It names the service it will call as `audience`
(or RFC 8707's `resource`), which becomes the token's `aud`: a token for one service is worth
nothing at another. Errors are the RFC's body, `{"error": ..., "error_description": ...}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qs, unquote

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from msashop.chassis.signing import SigningKey
from msashop.services.user.clients import ClientRegistry

log = structlog.get_logger()
router = APIRouter(tags=["internal"])

MAX_BODY_BYTES = 4096
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _answer(error: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="msashop"'
    body = {"error": error.error, "error_description": error.description}
    return JSONResponse(body, status_code=error.status, headers=headers)


def _form(body: bytes, content_type: str) -> dict[str, str]:
    """The request's parameters; each at most once (RFC 6749 §3.2)."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
            if any(len(values) > 1 for values in parsed.values()):
                raise OAuthError("invalid_request", "a parameter is given more than once")
            return {name: values[0] for name, values in parsed.items()}
        if content_type == "application/json":
            data = json.loads(body)
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise OAuthError("invalid_request", "the body must be a JSON object of strings")
            return dict(data)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body cannot be read") from None
    raise OAuthError("invalid_request", "send application/x-www-form-urlencoded (or application/json)")


def _basic(header: str) -> tuple[str, str] | None:
    """HTTP Basic client credentials (form-urlencoded inside, RFC 6749 §2.3.1); None: not Basic."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote(client_id), unquote(secret)


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    basic = _basic(request.headers.get("authorization", ""))
    if basic is not None:
        if "client_secret" in form:
            raise OAuthError("invalid_request", "use one way to authenticate the client, not two")
        return basic
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        raise OAuthError("invalid_client", "client authentication is required", 401)
    return client_id, secret


async def _issue(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise OAuthError("invalid_request", f"the body is larger than {MAX_BODY_BYTES} bytes")
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    form = _form(body, content_type)
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is served here")
    client_id, secret = _credentials(request, form)
    registry: ClientRegistry = request.app.state.client_registry
    if not registry.authenticate(client_id, secret):
        log.warning("service_token.invalid_client", client_id=client_id[:64])
        raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
    audience = form.get("audience") or form.get("resource") or ""
    if audience not in registry.audiences():
        raise OAuthError("invalid_target", "audience must name one of the platform's services")
    key: SigningKey = request.app.state.keyring.key
    ttl: int = request.app.state.service_token_ttl_seconds
    token, claims = key.service_token(client_id, audience, ttl_seconds=ttl)
    log.info("service_token.issued", client_id=client_id, audience=audience, jti=claims["jti"])
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


@router.post(
    "/oauth/token",
    include_in_schema=False,  # internal: not part of the platform's public API
    responses={
        200: {"description": "a service token for the audience"},
        400: {"description": "invalid_request, unsupported_grant_type or invalid_target"},
        401: {"description": "invalid_client"},
    },
)
async def token(request: Request) -> JSONResponse:
    """A service token (client credentials) for one of the platform's services to call another."""
    try:
        return JSONResponse(await _issue(request), headers=NO_STORE)
    except OAuthError as error:
        return _answer(error)
