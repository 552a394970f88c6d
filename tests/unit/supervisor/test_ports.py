import json
import socket
from pathlib import Path

import pytest

from msashop.supervisor.ports import PortInUse, ensure_free, free_ports, read_port_map, write_port_map


def test_free_ports_are_distinct_and_skip_the_excluded_one() -> None:
    ports = free_ports(12, exclude={8000})
    assert len(set(ports)) == 12
    assert 8000 not in ports
    for port in ports:
        ensure_free(port, "test")


def test_a_listening_port_is_reported_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            ensure_free(port, "gateway")
    assert caught.value.port == port
    assert "gateway" in str(caught.value)


def test_a_port_a_platform_just_stopped_serving_is_free_again() -> None:
    # The server closes first, as a stopping gateway does: its side stays in TIME_WAIT.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()
        client.recv(1)
        client.close()
    ensure_free(port, "gateway")


def test_port_map_is_written_whole_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text('{"old": "http://127.0.0.1:1"}')
    urls = {"product": "http://127.0.0.1:4001", "gateway": "http://127.0.0.1:8000"}
    write_port_map(path, urls)
    assert json.loads(path.read_text()) == urls
    assert read_port_map(path) == urls
    assert [p.name for p in tmp_path.iterdir()] == ["ports.json"]


def test_a_port_map_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="port map"):
        read_port_map(path)
