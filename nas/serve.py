"""The HTTP endpoint: `GET /subnets?space=&device=&latency_ms=&size_mb=&min_accuracy=&objective=` answers a
budget query from a results store (FastAPI; the OpenAPI schema is at `/openapi.json`, docs at `/docs`).

Status codes: 200 with the best subnet; 404 when nothing meets the budgets (the body still carries the message
and the closest candidates); 400 for a bad query (unknown space / device / data set, negative budget, unknown
objective, a query parameter the endpoint does not have -- `lat_ms=1` must not answer the unconstrained best),
422 for a value of the wrong type -- each with a one-line `error` naming field, value and what is allowed. A bad
query never yields a 500.

Answers carry no absolute server paths and no host names (a stored front's provenance may name both): paths are
cut to their last component and host fields dropped, unless the server is started with `disclose=True`
(`hwnas serve --disclose-paths`, for a local user).
"""
from __future__ import annotations

import os
import socket
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nas.front import OBJECTIVES
from nas.lookup import query
from nas.query_config import QueryConfig
from nas.store import ResultsStore
from search_spaces import HwnasError, InputError
from search_spaces.settings import field_map, help_of

HOST_KEYS = ("host", "hostname", "node", "node_ip", "ip")


def redact(obj: Any) -> Any:
    """`obj` with absolute paths cut to their last component and host-name fields removed (recursively)."""
    if isinstance(obj, dict):
        return {k: redact(v) for k, v in obj.items() if not (isinstance(k, str) and k.lower() in HOST_KEYS)}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        if obj.startswith("sqlite:///"):
            return "sqlite:///" + os.path.basename(obj[len("sqlite:///"):])
        if os.path.isabs(obj) or obj.startswith("~"):
            return os.path.basename(obj.rstrip("/")) or "/"
        if " /" in obj:  # a command line naming absolute paths
            return " ".join(redact(w) for w in obj.split(" "))
    return obj


class SubnetAnswer(BaseModel):
    """A budget query's answer (`found` false: nothing meets the budgets; see `closest`)."""

    found: bool
    message: str
    space: str
    device: str
    objective: str
    budgets: dict[str, float]
    n_entries: int = Field(description="stored subnets considered")
    n_feasible: int = Field(description="of those, meeting every budget")
    best: dict[str, Any] | None = Field(description="config, accuracy (%), latency_ms, size_bytes, size_mb, macs, "
                                                    "entry_id, provenance")
    closest: list[dict[str, Any]] = Field(description="when nothing meets the budgets: the nearest misses, "
                                                      "with their violations")


class ErrorAnswer(BaseModel):
    error: str


class FrontAnswer(BaseModel):
    front_id: int
    space: str
    device_tag: str
    device_fingerprint: str
    dataset: str
    predictor: str
    created_at: str
    n_entries: int


def _help(name: str) -> str:
    """The HTTP parameter's description: its `QueryConfig` field's help (the CLI's option shows the same)."""
    return help_of(field_map(QueryConfig)[name])


def create_app(store: ResultsStore | str | os.PathLike[str], disclose: bool = False) -> FastAPI:
    """The FastAPI application over `store` (opened once; it must exist). `disclose`: answers keep absolute
    paths and host names (for a local user)."""
    show = (lambda d: d) if disclose else redact
    if not isinstance(store, ResultsStore):
        store = ResultsStore(store, create=False)
    app = FastAPI(title="hwnas", summary="Device-specific subnets on request, from hwnas search results.",
                  version="1")
    app.state.store = store

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.exception_handler(HwnasError)
    async def _runtime_error(_request: Request, exc: HwnasError) -> JSONResponse:  # e.g. a corrupt store row
        return JSONResponse(status_code=500, content={"error": show(str(exc))})

    @app.middleware("http")
    async def _unknown_parameters(request: Request, call_next: Any) -> Any:
        known = allowed_params.get(request.url.path)
        if known is not None:
            unknown = sorted({k for k in request.query_params if k not in known})
            if unknown:
                return JSONResponse(status_code=400, content={"error": (
                    f"query parameter {', '.join(repr(u[:60]) for u in unknown[:5])}: unknown, allowed: "
                    f"{', '.join(sorted(known)) or 'none'}")})
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path")]
            field = ".".join(loc) or "request"
            parts.append(f"{field}: got {err.get('input')!r}, allowed: {err.get('msg', 'a valid value')}")
        return JSONResponse(status_code=422, content={"error": "; ".join(parts)})

    @app.get("/subnets", response_model=SubnetAnswer,
             responses={400: {"model": ErrorAnswer}, 404: {"model": SubnetAnswer}, 422: {"model": ErrorAnswer}})
    def subnets(
        space: str = Query(description=_help("space")),
        device: str = Query(description=_help("device")),
        latency_ms: float | None = Query(None, description=_help("latency_ms")),
        size_mb: float | None = Query(None, description=_help("size_mb")),
        min_accuracy: float | None = Query(None, description=_help("min_accuracy")),
        objective: str = Query("accuracy", description=f"{_help('objective')} One of {', '.join(OBJECTIVES)}."),
        dataset: str | None = Query(None, description=_help("dataset")),
        predictor: str | None = Query(None, description=_help("predictor")),
    ) -> Any:
        """The best stored subnet for `space` on `device` meeting every budget given."""
        r = query(QueryConfig(store=store, space=space, device=device, latency_ms=latency_ms, size_mb=size_mb,
                              min_accuracy=min_accuracy, objective=objective, dataset=dataset, predictor=predictor))
        body = show(r.to_dict())
        return body if r.found else JSONResponse(status_code=404, content=body)

    @app.get("/fronts", response_model=list[FrontAnswer])
    def fronts() -> Any:
        """Every stored front: its key and size."""
        return [show({k: v for k, v in f.to_dict().items() if k in FrontAnswer.model_fields}) for f in store.fronts()]

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "revision": store.revision()}

    from fastapi.routing import APIRoute

    allowed_params = {r.path: {p.alias for p in r.dependant.query_params} for r in app.routes
                      if isinstance(r, APIRoute)}
    return app


def serve(store: ResultsStore | str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info", disclose: bool = False) -> None:
    """Run the endpoint with uvicorn until interrupted (loopback by default)."""
    import uvicorn

    if not isinstance(port, int) or not 0 < port < 65536:
        raise InputError(f"port: got {port!r}, allowed: an integer in 1-65535")
    app = create_app(store, disclose=disclose)
    check_port_free(host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port with one line before uvicorn starts (it would log its own error and exit 3)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InputError(f"host: got {host!r}, allowed: a local interface name or address ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # what uvicorn sets too
        try:
            s.bind(addr)
        except OSError as e:
            raise HwnasError(f"serve: cannot listen on {host}:{port} ({e.strerror}); another process holds it? "
                             "choose another `port`") from None


__all__ = ["create_app", "serve"]
