"""The HTTP endpoint: `GET /subnets?space=&device=&latency_ms=&size_mb=&min_accuracy=&objective=` answers a
budget query from a results store (FastAPI; the OpenAPI schema is at `/openapi.json`, docs at `/docs`).

Status codes: 200 with the best subnet; 404 when nothing meets the budgets (the body still carries the message
and the closest candidates); 400 for a bad query (unknown space / device / data set, negative budget, unknown
objective), 422 for a value of the wrong type -- each with a one-line `error` naming field, value and what is
allowed. A bad query never yields a 500.
"""
from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nas.front import OBJECTIVES
from nas.lookup import query
from nas.store import ResultsStore
from search_spaces import InputError


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


def create_app(store: ResultsStore | str | os.PathLike[str]) -> FastAPI:
    """The FastAPI application over `store` (opened once; it must exist)."""
    if not isinstance(store, ResultsStore):
        store = ResultsStore(store, create=False)
    app = FastAPI(title="hwnas", summary="Device-specific subnets on request, from hwnas search results.",
                  version="1")
    app.state.store = store

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": str(exc)})

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
        space: str = Query(description="search space name, e.g. mbv3"),
        device: str = Query(description="device tag the front was searched for"),
        latency_ms: float | None = Query(None, description="latency budget in ms (<=)"),
        size_mb: float | None = Query(None, description="size budget in MB = 10^6 bytes (<=)"),
        min_accuracy: float | None = Query(None, description="predicted top-1 accuracy floor in percent (>=)"),
        objective: str = Query("accuracy", description=f"best by: one of {', '.join(OBJECTIVES)}"),
        dataset: str | None = Query(None, description="data set (needed when fronts on several exist)"),
        predictor: str | None = Query(None, description="accuracy predictor the front was searched with"),
    ) -> Any:
        """The best stored subnet for `space` on `device` meeting every budget given."""
        r = query(store, space, device, latency_ms=latency_ms, size_mb=size_mb, min_accuracy=min_accuracy,
                  objective=objective, dataset=dataset, predictor=predictor)
        body = r.to_dict()
        return body if r.found else JSONResponse(status_code=404, content=body)

    @app.get("/fronts", response_model=list[FrontAnswer])
    def fronts() -> Any:
        """Every stored front: its key and size."""
        return [{k: v for k, v in f.to_dict().items() if k in FrontAnswer.model_fields} for f in store.fronts()]

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "revision": store.revision()}

    return app


def serve(store: ResultsStore | str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info") -> None:
    """Run the endpoint with uvicorn until interrupted (loopback by default)."""
    import uvicorn

    if not isinstance(port, int) or not 0 < port < 65536:
        raise InputError(f"port: got {port!r}, allowed: an integer in 1-65535")
    app = create_app(store)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["create_app", "serve"]
