"""Composition root of the trace store: no bus, no migrations; its spans in `<data dir>/traces.db`."""

from __future__ import annotations

from msashop.chassis.service import Service
from msashop.traces import api
from msashop.traces.config import TracesSettings
from msashop.traces.recorder import Recorder


def create_service(settings: TracesSettings | None = None) -> Service:
    settings = settings or TracesSettings.load("traces")
    recorder = Recorder(settings)
    service = Service(settings, uses_bus=False)
    service.on_startup(recorder.start)
    service.on_shutdown(recorder.stop)
    service.app.state.recorder = recorder
    service.include_router(api.receiver)
    service.include_router(api.router)
    return service
