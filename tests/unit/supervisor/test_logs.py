import json
from pathlib import Path

from msashop.supervisor.logs import ConsoleLine, LogFile, compact


def test_service_json_line_becomes_event_and_a_few_keys() -> None:
    raw = json.dumps(
        {
            "port": 4001,
            "event": "service.started",
            "version": "v1",
            "service": "product",
            "level": "info",
            "timestamp": "2025-01-01T00:00:00Z",
        }
    )
    assert compact(raw) == ConsoleLine("info", "service.started port=4001")


def test_warning_level_and_quoted_text_values() -> None:
    raw = json.dumps({"event": "bus.connect_failed", "level": "warning", "error": "connection refused"})
    assert compact(raw) == ConsoleLine("warning", 'bus.connect_failed error="connection refused"')


def test_long_values_and_many_keys_are_cut() -> None:
    record = {"event": "e", "level": "info", **{f"k{i}": i for i in range(10)}, "blob": "x" * 500}
    line = compact(json.dumps(record))
    assert line.text.startswith("e k0=0 k1=1")
    assert line.text.endswith("…")
    assert len(line.text) < 120


def test_an_exception_shows_its_last_line_only() -> None:
    raw = json.dumps(
        {"event": "periodic.failed", "level": "error", "exception": "Traceback...\n  File x\nKeyError: 'a'"}
    )
    assert compact(raw) == ConsoleLine("error", "periodic.failed exception=KeyError: 'a'")


def test_plain_text_passes_through() -> None:
    assert compact("Running upgrade  -> 0001, products\n") == ConsoleLine(
        "", "Running upgrade  -> 0001, products"
    )
    assert compact("{not json") == ConsoleLine("", "{not json")


def test_infra_lines_get_their_level() -> None:
    nats = "[123] 2025/01/01 10:00:00.000000 [WRN] Slow consumer detected"
    assert compact(nats) == ConsoleLine("warning", "Slow consumer detected")
    assert compact("[1] 2025/01/01 10:00:00.0 [INF] Server is ready").level == "info"
    valkey = "12:M 25 Nov 2026 15:04:13.946 * Ready to accept connections tcp"
    assert compact(valkey) == ConsoleLine("info", "Ready to accept connections tcp")
    overcommit = "12:M 25 Nov 2026 15:04:13.946 # WARNING Memory overcommit must be enabled!"
    assert compact(overcommit).level == "info"


def test_log_file_rotates_and_keeps_three_backups(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "order.log", max_bytes=100, backups=3)
    for n in range(50):
        log.write(f"line {n:03d} " + "x" * 20)  # 30 bytes with the newline: 3 lines per file
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["order.log", "order.log.1", "order.log.2", "order.log.3"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert (tmp_path / "order.log").read_text().splitlines()[-1].startswith("line 049")
    assert (tmp_path / "order.log.1").read_text().splitlines()[-1].startswith("line 047")


def test_log_file_appends_across_restarts(tmp_path: Path) -> None:
    for text in ("first", "second"):
        log = LogFile(tmp_path / "user.log")
        log.write(text)
        log.close()
    assert (tmp_path / "user.log").read_text() == "first\nsecond\n"


def test_ids_stay_in_the_file_and_uuids_are_shortened_on_the_console() -> None:
    raw = json.dumps(
        {
            "event": "stock.reserved",
            "level": "info",
            "order_id": "39468057-a3aa-4748-8bbb-0014f63c3ed3",
            "event_id": "0170bb69251356789fef2871231a98d2",
            "correlation_id": "39468057-a3aa-4748-8bbb-0014f63c3ed3",
            "request_id": "6031a418a20c44088bbf25fc4f1383c2",
        }
    )
    assert compact(raw) == ConsoleLine("info", "stock.reserved order_id=39468057")


def test_server_start_and_stop_chatter_is_marked_debug() -> None:
    for line in ("Waiting for application startup.", "Context impl SQLiteImpl.", "Uvicorn running on x"):
        assert compact(line).level == "debug"
    assert compact("Running upgrade  -> 0001, users").level == ""
