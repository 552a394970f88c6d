"""The port map backend: re-read when the file changes, looked at no more than once a check period."""

import json
import os
from pathlib import Path

from msashop.chassis.discovery import PortMapDiscovery


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, urls: dict[str, str | list[str]]) -> None:
    # Write then rename, as the supervisor does: a new inode, so the change is seen whatever the mtime.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(urls))
    os.replace(tmp, path)


def test_every_url_listed_is_an_instance(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    _write(path, {"product": ["http://a:1/", "http://b:2"], "user": "http://c:3"})
    found = PortMapDiscovery(path).instances("product")
    assert [(i.id, i.url, i.version) for i in found] == [
        ("product-1", "http://a:1", "v1"),
        ("product-2", "http://b:2", "v1"),
    ]
    assert PortMapDiscovery(path).url("user") == "http://c:3"


def test_a_change_is_seen_at_the_next_check_and_not_before(tmp_path: Path) -> None:
    path, clock = tmp_path / "ports.json", Clock()
    _write(path, {"product": "http://a:1"})
    discovery = PortMapDiscovery(path, check_every=1.0, clock=clock)
    assert discovery.url("product") == "http://a:1"
    _write(path, {"product": "http://b:2"})
    clock.now = 0.5
    assert discovery.url("product") == "http://a:1"  # no stat within the second
    clock.now = 1.0
    assert discovery.url("product") == "http://b:2"


def test_between_checks_the_file_is_not_looked_at(tmp_path: Path) -> None:
    path, clock = tmp_path / "ports.json", Clock()
    _write(path, {"product": "http://a:1"})
    discovery = PortMapDiscovery(path, clock=clock)
    discovery.instances("product")
    path.unlink()
    path.mkdir()  # a stat would still work; a read would fail: proves neither happens before the check
    for _ in range(100):
        assert discovery.url("product") == "http://a:1"


def test_a_missing_file_keeps_what_was_read(tmp_path: Path) -> None:
    path, clock = tmp_path / "ports.json", Clock()
    assert PortMapDiscovery(path, clock=clock).instances("product") == []
    _write(path, {"product": "http://a:1"})
    discovery = PortMapDiscovery(path, clock=clock)
    assert discovery.all() == {"product": "http://a:1"}
    path.unlink()
    clock.now = 5.0
    assert discovery.all() == {"product": "http://a:1"}
