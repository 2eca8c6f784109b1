"""Transport guard: no API key over plain http to another machine, TLS verified unless told not to.

Refused hosts are ``.invalid`` names (or addresses) and the socket layer is watched: a
look-up or connection to anything but this machine is recorded and blocked, so a broken
guard fails the test without sending traffic anywhere.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
import time

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_outreach.exceptions import ConnectionConfigError, TransportError
from airflow_provider_outreach.hooks.dialnexa import DialnexaHook
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator
from airflow_provider_outreach.sandbox import DEFAULT_KEYS, SandboxClient, SandboxServer
from airflow_provider_outreach.triggers.campaign_status import CampaignStatusTrigger
from tests.conftest import RecordingTI
from tests.seeds import base_seed

HOOKS = {"lemlist": LemlistHook, "leadlex": LeadlexHook, "dialnexa": DialnexaHook}
CAMPAIGNS = {"lemlist": "cam_running", "leadlex": "cmp_active", "dialnexa": "cmp_live"}
REMOTE_HOSTS = [
    "http://example.invalid/api",
    "HTTP://API.EXAMPLE.INVALID/v1",
    "  http://example.invalid:443/  ",
    "http://127.0.0.1.example.invalid/api",
    "http://localhost.example.invalid/api",
    "http://127.0.0.1@example.invalid/api",
    "http://example.invalid#@127.0.0.1/",
    "http://10.255.255.1/api",
    "http://0.0.0.0:9/api",
    "http://[::ffff:7f00:1]/api",
    "http://[fd00::1]/api",
]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host.lower() == "localhost"


@pytest.fixture
def wire(monkeypatch):
    """Records every name look-up and connection; blocks those that would leave this machine."""
    seen: list[tuple[str, object]] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        seen.append(("resolve", host))
        if isinstance(host, bytes):
            host = host.decode()
        if host is not None and not _loopback(str(host)):
            raise socket.gaierror(socket.EAI_NONAME, f"blocked by the test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        seen.append(("connect", address))
        if isinstance(address, tuple) and not _loopback(str(address[0])):
            raise OSError(f"blocked by the test: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def set_connection(monkeypatch, vendor: str, conn_id: str, host: str, **extra) -> str:
    payload = {"conn_type": vendor, "host": host, "password": DEFAULT_KEYS[vendor], "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
    return conn_id


# -- plain http to another machine: refused before any socket ------------------------------


@pytest.mark.parametrize("vendor", sorted(HOOKS))
@pytest.mark.parametrize("host", REMOTE_HOSTS)
def test_plain_http_to_another_machine_is_refused_before_any_socket(monkeypatch, wire, vendor, host):
    conn_id = set_connection(monkeypatch, vendor, f"{vendor}_remote", host)
    hook = HOOKS[vendor](conn_id)
    with pytest.raises(ConnectionConfigError) as err:
        hook.get_campaign(CAMPAIGNS[vendor])
    text = str(err.value)
    assert f"connection '{conn_id}'" in text
    assert "plain http" in text or "host must be an http(s) URL" in text
    assert DEFAULT_KEYS[vendor] not in text
    assert wire == [], f"the network was touched: {wire}"


def test_operator_with_a_plain_http_connection_fails_once_and_sends_nothing(monkeypatch, wire):
    set_connection(monkeypatch, "lemlist", "lemlist_remote", "http://example.invalid/api")
    op = LemlistUnsubscribeLeadOperator(
        task_id="t",
        email=[f"p{i}@example.com" for i in range(50)],
        campaign_id="cam_1",
        lemlist_conn_id="lemlist_remote",
    )
    with pytest.raises(ConnectionConfigError, match="plain http"):
        op.execute({"ti": RecordingTI()})
    assert wire == []


def test_trigger_with_a_plain_http_connection_ends_with_an_error_event(monkeypatch, wire):
    set_connection(monkeypatch, "leadlex", "leadlex_remote", "http://example.invalid/api")
    trigger = CampaignStatusTrigger(
        hook_class="airflow_provider_outreach.hooks.leadlex.LeadlexHook",
        conn_id="leadlex_remote",
        campaign_id="cmp_active",
        target_statuses=["draft"],
        failure_statuses=[],
        poll_interval=0.1,
        deadline=9e9,
    )

    async def first():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first())
    assert event["status"] == "error" and "plain http" in event["message"]
    assert wire == []


# -- loopback: plain http allowed, on every loopback spelling --------------------------------


@pytest.fixture(scope="module")
def loopback_servers():
    """Sandboxes on 127.5.5.5 and [::1] besides the session's one on 127.0.0.1."""
    servers = {"127.5.5.5": SandboxServer(host="127.5.5.5", seed=base_seed()).start()}
    servers["::1"] = SandboxServer(host="::1", seed=base_seed()).start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_loopback_hosts_are_allowed_over_plain_http(
    sandbox, sandbox_server, loopback_servers, monkeypatch, wire, vendor
):
    sandbox.seed(base_seed())
    port = sandbox_server.port
    api = SandboxServer.vendor_path(vendor)
    targets = {
        f"http://127.0.0.1:{port}{api}": sandbox_server,
        f"http://localhost:{port}{api}": sandbox_server,
        f"http://127.5.5.5:{loopback_servers['127.5.5.5'].port}{api}": loopback_servers["127.5.5.5"],
        f"http://[::1]:{loopback_servers['::1'].port}{api}": loopback_servers["::1"],
    }
    for i, (host, server) in enumerate(targets.items()):
        client = SandboxClient(server.url)
        client.clear_requests()
        conn_id = set_connection(monkeypatch, vendor, f"{vendor}_loop{i}", host)
        campaign = HOOKS[vendor](conn_id).get_campaign(CAMPAIGNS[vendor])
        assert campaign["status"]
        (record,) = client.requests(vendor=vendor)
        assert record["authorized"] and record["segments"][-1] == CAMPAIGNS[vendor]
        client.close()
    assert all(_loopback(str(address[0])) for kind, address in wire if kind == "connect")


# -- TLS: verified by default (sync and async), off only when the connection says so ------------


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory):
    """A sandbox behind TLS with a self-signed certificate for localhost / 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = SandboxServer(seed=base_seed())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    server.start()
    admin = SandboxClient(f"https://localhost:{server.port}")
    admin.session.verify, admin.session.trust_env = str(cert_file), False
    yield server, cert_file, admin
    admin.close()
    server.stop()


def tls_url(server: SandboxServer, vendor: str) -> str:
    """The vendor's base URL on the TLS sandbox, by host name (the certificate's)."""
    return f"https://localhost:{server.port}{server.vendor_path(vendor)}"


async def _async_read(hook_cls, conn_id: str, campaign: str):
    hook = hook_cls(conn_id, max_attempts=1)
    await hook.aload_connection()
    async with hook.async_client() as client:
        return await hook.aget_campaign(client, campaign)


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_tls_certificates_are_verified_by_default(tls_sandbox, monkeypatch, vendor):
    server, _, admin = tls_sandbox
    conn_id = set_connection(monkeypatch, vendor, f"{vendor}_tls", tls_url(server, vendor))
    hook = HOOKS[vendor](conn_id, max_attempts=1)
    assert hook.get_conn().session.verify is True
    before = len(admin.requests())
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        hook.get_campaign(CAMPAIGNS[vendor])
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(_async_read(HOOKS[vendor], conn_id, CAMPAIGNS[vendor]))
    assert len(admin.requests()) == before, "a request reached the server through an unverified connection"


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
@pytest.mark.parametrize("vendor", sorted(HOOKS))
@pytest.mark.parametrize("flag", [False, "false", "off"])
def test_verify_ssl_false_turns_verification_off_explicitly(tls_sandbox, monkeypatch, vendor, flag):
    server, _, admin = tls_sandbox
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # a CA bundle in the environment must not undo the flag
    conn_id = set_connection(monkeypatch, vendor, f"{vendor}_tls", tls_url(server, vendor), verify_ssl=flag)
    before = len(admin.requests(vendor=vendor))
    hook = HOOKS[vendor](conn_id, max_attempts=1)
    assert hook.get_conn().session.verify is False
    assert hook.get_campaign(CAMPAIGNS[vendor])["status"]
    assert asyncio.run(_async_read(HOOKS[vendor], conn_id, CAMPAIGNS[vendor]))["status"]
    assert [r["status"] for r in admin.requests(vendor=vendor)][before:] == [200, 200]


def test_verification_trusts_the_configured_ca_bundle(tls_sandbox, monkeypatch):
    """Verification on, with the certificate's issuer trusted: the call goes through."""
    server, cert_file, _ = tls_sandbox
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    conn_id = set_connection(monkeypatch, "dialnexa", "dialnexa_tls", tls_url(server, "dialnexa"))
    hook = DialnexaHook(conn_id, max_attempts=1)
    assert hook.get_conn().session.verify is True
    assert hook.get_campaign("cmp_live")["id"] == "cmp_live"
    assert asyncio.run(_async_read(DialnexaHook, conn_id, "cmp_live"))["id"] == "cmp_live"


def test_a_failed_certificate_check_is_not_retried(tls_sandbox, monkeypatch):
    from airflow_provider_outreach.exceptions import TLSVerificationError

    server, _, admin = tls_sandbox
    conn_id = set_connection(monkeypatch, "leadlex", "leadlex_tls", tls_url(server, "leadlex"))
    hook = LeadlexHook(conn_id, backoff=8.0)  # default attempts: a retry would cost at least 8 s
    started = time.monotonic()
    with pytest.raises(TLSVerificationError, match="CERTIFICATE_VERIFY_FAILED"):
        hook.get_campaign("cmp_active")
    assert time.monotonic() - started < 7.0
    with pytest.raises(TLSVerificationError):
        asyncio.run(_async_read(LeadlexHook, conn_id, "cmp_active"))


def test_the_trigger_stops_at_once_on_a_failed_certificate_check(tls_sandbox, monkeypatch):
    """The trigger decides with the same retry rule as hooks and poke(): a bad certificate
    ends the wait with an error event at once, not at the deadline."""
    server, _, _ = tls_sandbox
    conn_id = set_connection(monkeypatch, "leadlex", "leadlex_tls", tls_url(server, "leadlex"))
    trigger = CampaignStatusTrigger(
        hook_class="airflow_provider_outreach.hooks.leadlex.LeadlexHook",
        conn_id=conn_id,
        campaign_id="cmp_active",
        target_statuses=["draft"],
        failure_statuses=[],
        poll_interval=0.2,
        deadline=time.time() + 30,
    )

    async def first():
        async for event in trigger.run():
            return event.payload

    started = time.monotonic()
    event = asyncio.run(asyncio.wait_for(first(), 30))
    assert event["status"] == "error" and "CERTIFICATE_VERIFY_FAILED" in event["message"]
    assert time.monotonic() - started < 5
