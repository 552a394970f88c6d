"""`msashop certs list|rotate` on a data dir's TLS directory."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from msashop.cli import app
from msashop.supervisor import certificates

runner = CliRunner()


def test_rotate_one_service_gives_it_a_new_key_and_leaves_the_others(tmp_path: Path) -> None:
    tls = certificates.tls_dir(tmp_path)
    certificates.ensure(tls, ["order", "user"])
    order_key, user_key = (tls / "order.key").read_bytes(), (tls / "user.key").read_bytes()

    done = runner.invoke(app, ["certs", "rotate", "order", "--data-dir", str(tmp_path)])

    assert done.exit_code == 0, done.output
    assert "new certificates" in done.output and "order" in done.output
    assert (tls / "order.key").read_bytes() != order_key
    assert (tls / "user.key").read_bytes() == user_key


def test_rotate_without_a_name_renews_every_certificate_and_list_shows_them(tmp_path: Path) -> None:
    tls = certificates.tls_dir(tmp_path)
    certificates.ensure(tls, ["order"])
    before = {name: (tls / f"{name}.pem").read_bytes() for name in certificates.issued_names(tls)}

    done = runner.invoke(app, ["certs", "rotate", "--data-dir", str(tmp_path)])
    listed = runner.invoke(app, ["certs", "list", "--data-dir", str(tmp_path)])

    assert done.exit_code == 0, done.output
    assert all((tls / f"{name}.pem").read_bytes() != pem for name, pem in before.items())
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split()[-1] for line in listed.output.splitlines()[1:] if line.strip()}
    # A fresh certificate: 30 days minus the seconds since it was issued.
    assert rows == {"order": "29", "prometheus": "29", "supervisor": "29"}


def test_an_unknown_component_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    done = runner.invoke(app, ["certs", "rotate", "billing", "--data-dir", str(tmp_path)])

    assert done.exit_code == 2
    assert "unknown component 'billing'" in done.output
    assert not certificates.tls_dir(tmp_path).exists()


def test_list_without_certificates_says_so(tmp_path: Path) -> None:
    done = runner.invoke(app, ["certs", "list", "--data-dir", str(tmp_path)])

    assert done.exit_code == 1
    assert "no certificates" in done.output
