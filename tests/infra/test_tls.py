"""``eco2 up --tls`` / ``ECO2_TLS``: the local certificate under the data dir, the gateway's
HTTPS arguments, and the PWA's HTTPS dev origins in the default CORS list. (The HTTPS gateway
with a browser on the PWA's HTTPS origin: tests/browser/test_pwa_tls.py.)"""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from infra.cli import app, child_env, gateway_url, processes
from infra.gateway_app import create_gateway
from infra.settings import Settings
from infra.tls import ensure_local_certificate
from tests.conftest import REDIS_URL
from tests.gateway.helpers import asgi_client


def test_certificate_is_made_once_under_the_data_dir(tmp_path: Path) -> None:
    made = ensure_local_certificate(tmp_path, "127.0.0.1")
    assert made.cert.parent == tmp_path / "tls"
    assert stat.S_IMODE(made.key.stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates(made.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(made.ca.read_bytes())
    leaf = chain[0]
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    assert leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=365)
    before = made.cert.read_bytes()
    again = ensure_local_certificate(tmp_path, "127.0.0.1")
    assert again == made and again.cert.read_bytes() == before  # reused, not remade


def test_a_lan_host_gets_a_new_certificate_naming_it(tmp_path: Path) -> None:
    first = ensure_local_certificate(tmp_path, "127.0.0.1").cert.read_bytes()
    lan = ensure_local_certificate(tmp_path, "192.168.0.7")
    assert lan.cert.read_bytes() != first
    leaf = x509.load_pem_x509_certificates(lan.cert.read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.168.0.7") in names.get_values_for_type(x509.IPAddress)


def test_tls_setting_and_the_gateway_process(tmp_path: Path) -> None:
    assert Settings.from_env({"ECO2_TLS": "1"}).tls is True
    assert Settings.from_env({}).tls is False
    plain = Settings(data_dir=tmp_path, port=8443)
    gateway = next(p for p in processes(plain) if p.name == "gateway")
    assert "--ssl-certfile" not in gateway.argv and gateway_url(plain).startswith("http://")
    tls = plain.with_(tls=True)
    gateway = next(p for p in processes(tls) if p.name == "gateway")
    argv = list(gateway.argv)
    assert argv[argv.index("--ssl-certfile") + 1] == str(tmp_path / "tls" / "cert.pem")
    assert argv[argv.index("--ssl-keyfile") + 1] == str(tmp_path / "tls" / "key.pem")
    assert child_env(tls)["ECO2_TLS"] == "true"
    assert gateway_url(tls) == "https://localhost:8443"


def test_up_has_a_tls_option() -> None:
    result = CliRunner().invoke(app, ["up", "--help"])
    assert result.exit_code == 0 and "--tls" in result.output and "ECO2_TLS" in result.output


def test_pwa_https_dev_origins_are_allowed_by_default() -> None:
    origins = Settings.from_env({}).cors_origins
    assert {"https://localhost:5173", "https://127.0.0.1:5173", "http://localhost:5173"} <= set(
        origins)
    assert origins[0] == "http://localhost:5173"  # still the default frontend
    assert Settings.from_env({"ECO2_PRODUCTION": "1", "ECO2_SECRET_KEY": "x" * 32}).cors_origins == ()


@pytest.mark.redis
async def test_no_hsts_from_the_local_certificate(tmp_path: Path, namespace: str) -> None:
    # A browser trusting the local CA would otherwise force HTTPS on every http://localhost
    # dev server for a year; real deployments (production, or HTTPS at a proxy) keep HSTS.
    for tls, hsts in ((True, False), (False, True)):
        settings = Settings(redis_url=REDIS_URL, namespace=namespace, data_dir=tmp_path, tls=tls)
        async with asgi_client(create_gateway(settings)) as client:
            r = await client.get("https://testserver/health")
            assert r.status_code == 200
            assert ("strict-transport-security" in r.headers) is hsts, (tls, r.headers)
