import json
from pathlib import Path

from typer.testing import CliRunner

from msashop.cli import app
from msashop.supervisor.logs_cli import log_files, read


def _write(path: Path, *records: dict[str, str]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")


def _at(second: int, event: str, **ids: str) -> dict[str, str]:
    return {"timestamp": f"2026-11-25T10:00:0{second}Z", "event": event, **ids}


def _platform(tmp_path: Path) -> Path:
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    _write(
        logs / "order.log",
        {"timestamp": "2026-11-25T10:00:02Z", "event": "order.placed", "request_id": "r1", "order_id": "o1"},
        {"timestamp": "2026-11-25T10:00:05Z", "event": "other", "request_id": "r2"},
    )
    _write(
        logs / "product-2.log", {"timestamp": "2026-11-25T10:00:01Z", "event": "request", "request_id": "r1"}
    )
    _write(logs / "product.log.1", {"timestamp": "2026-11-25T09:00:00Z", "event": "old", "request_id": "r1"})
    _write(
        logs / "product.log", {"timestamp": "2026-11-25T10:00:03Z", "event": "saga", "correlation_id": "o1"}
    )
    _write(logs / "productive.log", {"timestamp": "2026-11-25T10:00:04Z", "event": "x", "request_id": "r1"})
    return tmp_path / "data"


def test_files_of_a_service_are_its_instances_only(tmp_path: Path) -> None:
    logs = _platform(tmp_path) / "logs"
    assert [p.name for p in log_files(logs, "product")] == ["product-2.log", "product.log"]
    assert len(log_files(logs, None)) == 4


def test_lines_for_an_id_across_services_and_rotations_oldest_first(tmp_path: Path) -> None:
    logs = _platform(tmp_path) / "logs"
    rows = read(log_files(logs, None), "r1")
    assert [(instance, r["event"]) for _, instance, r in rows] == [
        ("product", "old"),
        ("product-2", "request"),
        ("order", "order.placed"),
        ("productive", "x"),
    ]
    assert [r["event"] for _, _, r in read(log_files(logs, None), "o1")] == ["order.placed", "saga"]


def test_the_command_prints_merged_lines_and_fails_without_logs(tmp_path: Path) -> None:
    data = _platform(tmp_path)
    result = CliRunner().invoke(app, ["logs", "order", "--id", "r1", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "order.placed" in result.output and "other" not in result.output
    missing = CliRunner().invoke(app, ["logs", "--data-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
