"""What the gateway's security and observability layers cost, one step at a time, in one run.

    .venv/bin/python bench/edge_cost.py [--seconds 8] [--connections 32] [--json out.json]

One upstream (a bare uvicorn app answering GET /products with ~1 KB of JSON and the JWKS), the
embedded trace store (`msashop serve traces`) as the OTLP sink, Redis on 127.0.0.1:6379 as the
shared store; then the gateway (`msashop serve gateway`, one worker) is started once per
configuration below and driven with wrk twice: one connection (requests one after another: the
latency a request pays, p50) and `--connections` connections (the throughput it can give).

Configurations, each adding one layer to the one before:
  bare             anonymous requests, rate limits, request metrics and tracing all off
  + token          a valid Bearer access token on every request (EdDSA check + revocation lookup)
  + rate limits    tier window (`limits`, sliding window counter) + burst bucket (Lua), on Redis
  + metrics        the per-request histogram and counter
  + tracing        server and client spans, every trace kept and exported over OTLP (the default)
  tracing 10%      the same, a tenth of the traces kept (the production default ratio)
Limits are set far above what the run sends, so nothing is refused: the cost is the counting.
Not a test: a measurement. On this 2-core machine wrk, the gateway, the upstream and Redis share
the cores, so compare the rows with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import _latency, _which, free_port, wait_ok

from msashop.chassis.signing import SigningKey

UPSTREAM_APP = """
import json, pathlib
BODY = json.dumps({"items": [{"id": f"p{n}", "name": f"Product {n}", "price": 9.99} for n in range(12)],
                   "total": 12, "page": 1, "page_size": 20}).encode()
JWKS = pathlib.Path("jwks.json").read_bytes()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = JWKS if scope["path"].endswith("jwks.json") else BODY
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

HUGE = "1000000000/hour"


def steps(trace_endpoint: str) -> list[tuple[str, bool, dict[str, str]]]:
    """(name, send a token, gateway environment) per configuration."""
    off = {"MSASHOP_RATE_LIMITS": "off", "MSASHOP_REQUEST_METRICS": "off", "MSASHOP_TRACING": "off"}
    limits = {
        "MSASHOP_RATE_LIMITS": "on",
        "MSASHOP_GATEWAY_RATE_LIMIT_ANONYMOUS": HUGE,
        "MSASHOP_GATEWAY_RATE_LIMIT_AUTHENTICATED": HUGE,
        "MSASHOP_GATEWAY_RATE_LIMIT_PREMIUM": HUGE,
        "MSASHOP_GATEWAY_BURST_CAPACITY": "1000000000",
        "MSASHOP_GATEWAY_BURST_REFILL_PER_SECOND": "1000000000",
    }
    metrics = {"MSASHOP_REQUEST_METRICS": "on"}
    tracing = {
        "MSASHOP_TRACING": "on",
        "MSASHOP_OTLP_ENDPOINT": trace_endpoint,
        "MSASHOP_TRACE_SAMPLE_RATIO": "1",
    }
    return [
        ("bare", False, off),
        ("+ token", True, off),
        ("+ rate limits", True, off | limits),
        ("+ metrics", True, off | limits | metrics),
        ("+ tracing", True, off | limits | metrics | tracing),
        ("tracing 10%", True, off | limits | metrics | tracing | {"MSASHOP_TRACE_SAMPLE_RATIO": "0.1"}),
    ]


def wrk(url: str, seconds: int, connections: int, token: str | None) -> dict[str, float]:
    command = [
        _which("wrk") or "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
    ]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not _which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    root = Path(tempfile.mkdtemp(prefix="msashop-bench-edge-"))
    (root / "data").mkdir()
    key = SigningKey.generate()
    (root / "jwks.json").write_text(json.dumps(key.jwks()))
    token, _ = key.access_token("bench-user", ("customer",), ttl_seconds=3600)
    upstream_port, traces_port, gateway_port = free_port(), free_port(), free_port()
    (root / "upstream_app.py").write_text(textwrap.dedent(UPSTREAM_APP))
    upstream = f"http://127.0.0.1:{upstream_port}"
    (root / "data" / "ports.json").write_text(json.dumps({"product": upstream, "user": upstream}))
    base = {k: v for k, v in os.environ.items() if not k.startswith("MSASHOP_")}
    uvicorn = [sys.executable, "-m", "uvicorn", "upstream_app:app", "--port", str(upstream_port)]
    uvicorn += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    traces_env = base | {
        "MSASHOP_TRACES_PORT": str(traces_port),
        "MSASHOP_TRACES_DATA_DIR": str(root / "data"),
        "MSASHOP_TRACES_LOG_LEVEL": "WARNING",
    }
    helpers = [
        start(uvicorn, base, root),
        start([sys.executable, "-m", "msashop", "serve", "traces"], traces_env, root),
    ]
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        wait_ok(f"{upstream}/products")
        wait_ok(f"http://127.0.0.1:{traces_port}/health")
        url = f"http://127.0.0.1:{gateway_port}/api/products"
        loaded_head = f"req/s {args.connections} conn"
        print(f"{'configuration':16} {'p50 1 conn':>11} {'p99 1 conn':>11} {loaded_head:>15}")
        for name, with_token, env in steps(f"http://127.0.0.1:{traces_port}/v1/traces"):
            gateway_env = (
                base
                | env
                | {
                    "MSASHOP_GATEWAY_PORT": str(gateway_port),
                    "MSASHOP_GATEWAY_DATA_DIR": str(root / "data"),
                    "MSASHOP_GATEWAY_PORTS_FILE": str(root / "data" / "ports.json"),
                    "MSASHOP_GATEWAY_STORE_URL": args.redis,
                    "MSASHOP_GATEWAY_LOG_LEVEL": "WARNING",
                }
            )
            gateway = start([sys.executable, "-m", "msashop", "serve", "gateway"], gateway_env, root)
            try:
                wait_ok(url)
                bearer = token if with_token else None
                wrk(url, 2, args.connections, bearer)  # warm-up: pools, caches, the JWKS
                single = wrk(url, args.seconds, 1, bearer)
                loaded = wrk(url, args.seconds, args.connections, bearer)
            finally:
                stop(gateway)
            if single["non_2xx"] or loaded["non_2xx"]:
                raise SystemExit(f"{name}: non-2xx answers, the measurement is not of the happy path")
            results[name] = {"one_connection": single, "loaded": loaded}
            print(
                f"{name:16} {single['p50_ms']:9.3f}ms {single['p99_ms']:9.3f}ms {loaded['rps']:15.0f}",
                flush=True,
            )
            time.sleep(1)
    finally:
        for process in helpers:
            stop(process)
    bare, full = results["bare"], results["+ tracing"]
    security = results["+ rate limits"]["one_connection"]["p50_ms"] - bare["one_connection"]["p50_ms"]
    observability = full["one_connection"]["p50_ms"] - results["+ rate limits"]["one_connection"]["p50_ms"]
    summary = {
        "results": results,
        "security_added_p50_ms": round(security, 3),
        "observability_added_p50_ms": round(observability, 3),
        "observability_throughput_change": round(
            full["loaded"]["rps"] / results["+ rate limits"]["loaded"]["rps"] - 1, 3
        ),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
