"""`kms-server --use-bootstrap-server --tee simulated` as a real process, driven over real TLS by plain HTTP clients:
provisioning, handover to the KMS (KMIP over HTTPS with the CA-signed certificate and the derived key), attestation
of both servers, restart with the same and with another measurement, and no secret in any log or data file."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import secrets
import socket
import ssl
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from attestation.errors import VerificationError
from attestation.ratls import read_certificate, spki_der, verify_certificate
from attestation.tee.simulated import SimulatedTee, default_measurement
from attestation.verify import Policy
from bootstrap.keys import SEALING_LABEL, BootstrapKeys
from bootstrap.owner import attested_owner_hash
from bootstrap.sealing import sealed_path
from kms.config import DEFAULT_BOOTSTRAP_SUBJECT
from kms.kmip import binary
from tests.bootstrap.support import (
    UNSEAL_FAILED_MARK,
    UNSEALED_MARK,
    BootstrapProcess,
    Identity,
    LocalCa,
    call,
    self_signed,
    served_certificate,
    verify_fresh_attestation,
)
from tests.server.kmip_http import (
    Kmip,
    batch_item,
    byte_string,
    children,
    from_binary,
    request_message,
    to_binary,
    uid,
    value,
)
from tests.support.server import free_port

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

SUBJECT = "CN=kms.test.example,O=Owner Test"


@dataclass
class Provisioned:
    leaf: x509.Certificate
    database_secret: str


def provision(
    proc: BootstrapProcess, ca: LocalCa, *, identity: Identity | None = None, database_secret: str | None = None
) -> Provisioned:
    """The whole provisioning sequence; returns once the KMS's worker is ready."""
    url = proc.bootstrap_url
    r = call("POST", f"{url}/csr", identity=identity, json={"subject": SUBJECT, "sans": ["localhost", "127.0.0.1"]})
    assert r.status_code == 200, r.text
    leaf = ca.sign(r.json()["csr_pem"])
    r = call("POST", f"{url}/certificate", identity=identity, json={"chain_pem": ca.chain_pem(leaf)})
    assert r.status_code == 200, r.text
    assert call("GET", f"{url}/bootstrap/status").json()["state"] == "waiting-database"
    secret = database_secret or secrets.token_hex(32)
    body = {"database_type": "sqlite", "sqlite_path": str(proc.base / "sqlite"), "database_url": None,
            "database_secret": secret, "clear_database": False}
    r = call("POST", f"{url}/database", identity=identity, json=body)
    assert r.status_code == 200, r.text
    assert call("GET", f"{url}/bootstrap/status").json()["state"] == "ready"
    mark = len(proc.lines)
    r = call("POST", f"{url}/start", identity=identity, json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": "starting the KMS"}
    proc.wait_kms(start=mark)
    return Provisioned(leaf, secret)


def kms_client(proc: BootstrapProcess, ca: LocalCa) -> Kmip:
    """A KMIP client that trusts only the owner's CA: the KMS must present the CA-signed chain."""
    kmip = Kmip(proc.url)
    kmip.http.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces `verify`
    kmip.http.verify = str(ca.cert_file)
    return kmip


def active_key(kmip: Kmip) -> str:
    key_id = kmip.create()
    kmip.op("Activate", uid(key_id))
    return key_id


def derived_keys(sim_dir: Path, measurement: bytes | None = None) -> BootstrapKeys:
    """The keys the server must have derived, recomputed from the simulated platform (spec/bootstrap.md §1)."""
    sim = SimulatedTee(sim_dir, "sev-snp", measurement=measurement)
    return BootstrapKeys.from_sk(sim.sealing_key(SEALING_LABEL), sealed=True)


def pem_body_lines(key: object) -> list[str]:
    pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def secret_needles(keys: BootstrapKeys, *texts: str) -> dict[str, bytes]:
    """What must appear nowhere: the texts (database secret, passwords), both derived private keys as PEM body
    lines, DER and raw scalar, and the seal key."""
    needles: dict[str, bytes] = {}
    for i, text in enumerate(texts):
        needles[f"text{i}"] = text.encode()
        with contextlib.suppress(ValueError):
            needles[f"text{i}-raw"] = bytes.fromhex(text)
    for name, key in (("api", keys.api_key), ("bootstrap", keys.bootstrap_key)):
        for j, line in enumerate(pem_body_lines(key)):
            needles[f"{name}-pem-line{j}"] = line.encode()
        needles[f"{name}-der"] = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        needles[f"{name}-scalar"] = scalar
        needles[f"{name}-scalar-hex"] = scalar.hex().encode()
    needles["seal-key"] = keys.seal_key
    needles["seal-key-hex"] = keys.seal_key.hex().encode()
    return needles


def assert_nowhere(needles: dict[str, bytes], log: str, directories: list[Path]) -> int:
    """No needle in the log or in any file under `directories`; the number of files searched."""
    found = [name for name, needle in needles.items() if needle in log.encode()]
    assert not found, f"secrets in the server log: {found}"
    files = 0
    for directory in directories:
        for path in directory.rglob("*"):
            if path.is_file():
                files += 1
                data = path.read_bytes()
                found = [name for name, needle in needles.items() if needle in data]
                assert not found, f"secrets in {path}: {found}"
    return files


# ------------------------------------------------------------------------------------------------ tests


def test_provisioning_hands_over_to_the_kms_on_the_same_port(tmp_path: Path) -> None:
    """Default layout: bootstrap and KMS on one port, one after the other. The whole flow, then every check."""
    port = free_port()
    ca = LocalCa(tmp_path / "ca")
    proc = BootstrapProcess(tmp_path / "srv", port=port, bootstrap_port=port).start()
    try:
        proc.wait_bootstrap()
        sim = SimulatedTee(proc.sim_dir, "sev-snp")
        status = call("GET", f"{proc.bootstrap_url}/bootstrap/status").json()
        assert status == {"state": "waiting-certificate", "tee": "simulated-sev-snp", "version": status["version"],
                          "owner_bound": False}

        # The bootstrap certificate: the one TLS serves, RA-TLS verifiable with the simulated root only.
        served = served_certificate(port)
        pem = call("GET", f"{proc.bootstrap_url}/bootstrap/certificate").text
        assert x509.load_pem_x509_certificate(pem.encode()) == served
        claims = verify_certificate(served, now=datetime.now(UTC), roots=sim.roots(),
                                    policy=Policy(measurements=(default_measurement("sev-snp"),)))
        assert (claims.tee, claims.simulated, claims.debug) == ("sev-snp", True, False)
        assert read_certificate(served).claims["tee"] == "simulated-sev-snp"
        sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        assert served.subject.rfc4514_string() == DEFAULT_BOOTSTRAP_SUBJECT
        with pytest.raises(VerificationError):
            verify_certificate(served, now=datetime.now(UTC))  # the real vendor roots do not accept it

        # Fresh evidence on the bootstrap key.
        nonce = os.urandom(32)
        answer = call("GET", f"{proc.bootstrap_url}/attestation", params={"nonce": nonce.hex()}).json()
        assert answer["tee"] == "simulated-sev-snp"
        verify_fresh_attestation(answer, sim, spki_der(served), nonce)

        provisioned = provision(proc, ca)

        # The KMS now serves the CA-signed certificate, whose key is the API key derived from sk.
        keys = derived_keys(proc.sim_dir)
        main_cert = served_certificate(port)
        assert main_cert == provisioned.leaf
        assert spki_der(main_cert) == spki_der(keys.api_key)
        assert spki_der(served) == spki_der(keys.bootstrap_key)

        kmip = kms_client(proc, ca)
        key_id = active_key(kmip)
        enc = kmip.op("Encrypt", uid(key_id), byte_string("Data", b"attested hello"))
        assert value(enc, "Data")

        # /tee/attestation binds fresh evidence to the API key; /tee/certificate is an RA-TLS cert of that key.
        nonce = os.urandom(32)
        r = requests.get(f"{proc.url}/tee/attestation", params={"nonce": nonce.hex()}, verify=str(ca.cert_file),
                         timeout=60)
        assert r.status_code == 200, r.text
        verify_fresh_attestation(r.json(), sim, spki_der(main_cert), nonce)
        with pytest.raises(VerificationError, match="nonce"):
            verify_fresh_attestation(r.json(), sim, spki_der(main_cert), os.urandom(32))
        r = requests.get(f"{proc.url}/tee/certificate", verify=str(ca.cert_file), timeout=60)
        tee_cert = x509.load_pem_x509_certificate(r.content)
        assert spki_der(tee_cert) == spki_der(main_cert)
        verify_certificate(tee_cert, now=datetime.now(UTC), roots=sim.roots())
        r = requests.get(f"{proc.url}/tee/attestation", params={"nonce": "00"}, verify=str(ca.cert_file), timeout=60)
        assert r.status_code == 400 and "nonce" in r.json()["error"]

        # The bootstrap app is gone from the port: the KMS answers.
        r = requests.get(f"{proc.url}/bootstrap/status", verify=str(ca.cert_file), timeout=60)
        assert r.status_code == 404

        # The handover's key file is private while the KMS runs.
        (tls_dir,) = [p for p in proc.tmpdir.iterdir() if p.name.startswith("kms-bootstrap-tls-")]
        assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((tls_dir / "key.pem").stat().st_mode) == 0o600
        sealed = sealed_path(proc.base / "root")
        assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
        assert stat.S_IMODE(sealed.parent.stat().st_mode) == 0o700
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log()
    assert not any(proc.tmpdir.iterdir()), "the PEM copy of the key outlived the KMS"
    log = proc.log()
    assert "database configured (type sqlite" in log
    needles = secret_needles(keys, provisioned.database_secret)
    assert assert_nowhere(needles, log, proc.data_dirs) >= 3
    assert provisioned.database_secret.encode() not in sealed.read_bytes()


def test_restart_with_the_same_measurement_unseals_and_keeps_the_data(tmp_path: Path) -> None:
    ca = LocalCa(tmp_path / "ca")
    base = tmp_path / "srv"
    proc = BootstrapProcess(base).start().wait_bootstrap()
    try:
        provisioned = provision(proc, ca)
        kmip = kms_client(proc, ca)
        key_id = active_key(kmip)
        enc = kmip.op("Encrypt", uid(key_id), byte_string("Data", b"before the reboot"))
    finally:
        proc.stop()

    again = BootstrapProcess(base).start()
    try:
        again.wait_for(UNSEALED_MARK)
        again.wait_kms()
        assert "bootstrap server listening" not in again.log()
        assert served_certificate(again.port) == provisioned.leaf  # same chain, same derived key
        kmip = kms_client(again, ca)
        clear = kmip.op(
            "Decrypt", uid(key_id), byte_string("Data", bytes.fromhex(value(enc, "Data"))),
            byte_string("IVCounterNonce", bytes.fromhex(value(enc, "IVCounterNonce"))),
            byte_string("AuthenticatedEncryptionTag", bytes.fromhex(value(enc, "AuthenticatedEncryptionTag"))),
        )
        assert bytes.fromhex(value(clear, "Data")) == b"before the reboot"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{again.bootstrap_url}/bootstrap/status", verify=False, timeout=60)
    finally:
        again.stop()
    needles = secret_needles(derived_keys(proc.sim_dir), provisioned.database_secret)
    assert_nowhere(needles, proc.log() + again.log(), proc.data_dirs)


def test_restart_with_another_measurement_cannot_unseal_and_serves_bootstrap(tmp_path: Path) -> None:
    ca = LocalCa(tmp_path / "ca")
    base = tmp_path / "srv"
    proc = BootstrapProcess(base).start().wait_bootstrap()
    try:
        provision(proc, ca)
    finally:
        proc.stop()
    sealed_before = sealed_path(base / "root").read_bytes()

    other = "ab" * 48
    again = BootstrapProcess(base, "--tee-sim-measurement", other).start()
    try:
        again.wait_for(UNSEAL_FAILED_MARK)
        again.wait_bootstrap()
        assert UNSEALED_MARK not in again.log()
        assert call("GET", f"{again.bootstrap_url}/bootstrap/status").json()["state"] == "waiting-certificate"
        served = served_certificate(again.bootstrap_port)
        assert spki_der(served) == spki_der(derived_keys(base / "sim", bytes.fromhex(other)).bootstrap_key)
        assert spki_der(served) != spki_der(derived_keys(base / "sim").bootstrap_key)
        # The other image cannot use the first one's identity either: a new provisioning is needed.
        assert sealed_path(base / "root").read_bytes() == sealed_before
    finally:
        again.stop()


def test_sigterm_in_bootstrap_mode_exits_without_starting_the_kms(tmp_path: Path) -> None:
    proc = BootstrapProcess(tmp_path / "srv").start().wait_bootstrap()
    proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log()
    assert "bootstrap server stopped (SIGTERM) before /start" in proc.log()
    assert "KMS worker" not in proc.log()
    assert not sealed_path(tmp_path / "srv" / "root").exists()


# ------------------------------------------------------------------------------------------------ owner binding


def _refused_for_non_owners(proc: BootstrapProcess, owner: Identity, other: Identity) -> None:
    url = proc.bootstrap_url
    assert call("GET", f"{url}/bootstrap/status").json()["owner_bound"] is True
    for identity in (None, other):
        for path, body in (("/csr", {"subject": SUBJECT}), ("/certificate", {"chain_pem": "x"}),
                           ("/database", {"database_type": "sqlite"}), ("/start", {})):
            r = call("POST", f"{url}{path}", identity=identity, json=body)
            assert r.status_code == 403, (path, r.status_code, r.text)
            assert "owner" in r.json()["error"]
    assert call("GET", f"{url}/bootstrap/status").json()["state"] == "waiting-certificate"
    # GETs stay open to anybody (the owner verifies before it provisions).
    assert call("GET", f"{url}/attestation", params={"nonce": "11" * 32}).status_code == 200


def test_owner_binding_by_flag(tmp_path: Path) -> None:
    owner = self_signed(tmp_path / "id", "owner")
    other = self_signed(tmp_path / "id", "intruder")
    ca = LocalCa(tmp_path / "ca")
    proc = BootstrapProcess(tmp_path / "srv", "--bootstrap-owner-key-sha256", owner.spki_sha256.hex()).start()
    try:
        proc.wait_bootstrap()
        _refused_for_non_owners(proc, owner, other)
        provisioned = provision(proc, ca, identity=owner)
        assert served_certificate(proc.port) == provisioned.leaf
    finally:
        proc.stop()
    assert f"owner binding: key {owner.spki_sha256.hex()} from --bootstrap-owner-key-sha256" in proc.log()


@pytest.mark.parametrize("fmt", ["sev-snp", "tdx"])
def test_owner_binding_by_simulated_host_data(tmp_path: Path, fmt: str) -> None:
    owner = self_signed(tmp_path / "id", "owner")
    other = self_signed(tmp_path / "id", "intruder")
    proc = BootstrapProcess(
        tmp_path / "srv", "--tee-sim-format", fmt, "--tee-sim-host-data", owner.spki_sha256.hex()
    ).start()
    try:
        proc.wait_bootstrap()
        _refused_for_non_owners(proc, owner, other)
        # The owner hash is attested: it is in the evidence of the certificate the owner verifies.
        assert attested_owner_hash(read_certificate(served_certificate(proc.bootstrap_port)).evidence) == (
            owner.spki_sha256
        )
        r = call("POST", f"{proc.bootstrap_url}/csr", identity=owner, json={"subject": SUBJECT})
        assert r.status_code == 200, r.text
    finally:
        proc.stop()
    assert "from the TEE's HOST_DATA/MRCONFIGID" in proc.log()


def test_flag_and_host_data_naming_different_owners_refuse_to_start(tmp_path: Path) -> None:
    owner = self_signed(tmp_path / "id", "owner")
    proc = BootstrapProcess(
        tmp_path / "srv", "--tee-sim-host-data", owner.spki_sha256.hex(), "--bootstrap-owner-key-sha256", "cd" * 32
    ).start()
    assert proc.wait_exit() == 2
    proc.drain()
    assert "differs from the owner key hash in the TEE's HOST_DATA/MRCONFIGID" in proc.log()


# ------------------------------------------------------------------------------------------------ refusals


def test_out_of_order_and_repeated_calls_are_409_and_change_nothing(tmp_path: Path) -> None:
    ca = LocalCa(tmp_path / "ca")
    proc = BootstrapProcess(tmp_path / "srv").start().wait_bootstrap()
    url = proc.bootstrap_url

    def state() -> str:
        return call("GET", f"{url}/bootstrap/status").json()["state"]

    def refused(path: str, body: object, fragment: str) -> None:
        before = state()
        r = call("POST", f"{url}{path}", json=body)
        assert r.status_code == 409, (path, r.status_code, r.text)
        assert fragment in r.json()["error"], r.text
        assert state() == before

    try:
        refused("/database", {"database_type": "sqlite"}, "set the certificate first")
        refused("/start", {}, "not ready")
        refused("/pkcs12-password", {"password": "x"}, "no PKCS#12 received")
        csr = call("POST", f"{url}/csr", json={"subject": SUBJECT}).json()["csr_pem"]
        csr_again = call("POST", f"{url}/csr", json={"subject": SUBJECT}).json()["csr_pem"]  # allowed: same key
        assert x509.load_pem_x509_csr(csr.encode()).public_key() == x509.load_pem_x509_csr(
            csr_again.encode()).public_key()
        chain = ca.chain_pem(ca.sign(csr))
        assert call("POST", f"{url}/certificate", json={"chain_pem": chain}).status_code == 200
        refused("/certificate", {"chain_pem": chain}, "already set")
        refused("/csr", {"subject": SUBJECT}, "already set")
        refused("/pkcs12", None, "already set")
        refused("/start", {}, "database is missing")
        body = {"database_type": "sqlite", "sqlite_path": str(proc.base / "sqlite")}
        assert call("POST", f"{url}/database", json=body).status_code == 200
        refused("/database", body, "already configured")
        refused("/certificate", {"chain_pem": chain}, "already set")
        assert state() == "ready"
    finally:
        proc.stop()


def test_bad_input_is_400_with_a_json_reason(tmp_path: Path) -> None:
    proc = BootstrapProcess(tmp_path / "srv").start().wait_bootstrap()
    url = proc.bootstrap_url
    try:
        for nonce in (None, "", "zz" * 32, "00" * 31, "00" * 33):
            r = call("GET", f"{url}/attestation", params={"nonce": nonce} if nonce is not None else None)
            assert r.status_code == 400 and "nonce" in r.json()["error"], r.text
        for body, fragment in (
            ({"subject": "not a name"}, "RFC 4514"),
            ({"subject": ""}, "subject"),
            ({"subject": SUBJECT, "sans": ["bad name!"]}, "neither an IP address nor a DNS name"),
            ([1, 2], "JSON object"),
        ):
            r = call("POST", f"{url}/csr", json=body)
            assert r.status_code == 400 and fragment in r.json()["error"], r.text
        r = call("POST", f"{url}/csr", data=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON object" in r.json()["error"]
        r = call("POST", f"{url}/certificate", json={"chain_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n"})
        assert r.status_code == 400 and "chain_pem" in r.json()["error"]
        r = call("POST", f"{url}/csr", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "error" in r.json()
        r = call("GET", f"{url}/no-such-call")
        assert r.status_code == 404 and "error" in r.json()
        assert call("GET", f"{url}/bootstrap/status").json()["state"] == "waiting-certificate"
    finally:
        proc.stop()
    assert "Traceback" not in proc.log()


def test_pkcs12_compatibility_path(tmp_path: Path) -> None:
    """An externally made key and certificate (weaker, and logged as such); the password never appears anywhere."""
    ca = LocalCa(tmp_path / "ca")
    key = ec.generate_private_key(ec.SECP256R1())
    sans = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(x509.Name.from_rfc4514_string(SUBJECT))
        .add_extension(sans, critical=False).sign(key, hashes.SHA256())
    )
    leaf = ca.sign(csr.public_bytes(serialization.Encoding.PEM).decode())
    password = "p12-" + secrets.token_hex(12)
    p12 = pkcs12.serialize_key_and_certificates(
        b"kms", key, leaf, [ca.cert], serialization.BestAvailableEncryption(password.encode())
    )
    proc = BootstrapProcess(tmp_path / "srv").start().wait_bootstrap()
    url = proc.bootstrap_url
    try:
        r = call("POST", f"{url}/pkcs12", files={"file": ("bootstrap.p12", p12, "application/octet-stream")})
        assert r.status_code == 200 and r.json()["success"] == f"PKCS#12 of {len(p12)} bytes received", r.text
        r = call("POST", f"{url}/pkcs12-password", json={"password": "wrong"})
        assert r.status_code == 400 and "wrong password" in r.json()["error"]
        assert call("GET", f"{url}/bootstrap/status").json()["state"] == "waiting-certificate"
        r = call("POST", f"{url}/pkcs12-password", json={"password": password})
        assert r.status_code == 200, r.text
        body = {"database_type": "sqlite", "sqlite_path": str(proc.base / "sqlite")}
        assert call("POST", f"{url}/database", json=body).status_code == 200
        mark = len(proc.lines)
        assert call("POST", f"{url}/start", json={}).status_code == 200
        proc.wait_kms(start=mark)
        assert served_certificate(proc.port) == leaf
        kms_client(proc, ca).create()
        r = requests.get(f"{proc.url}/tee/attestation", params={"nonce": "22" * 32}, verify=str(ca.cert_file),
                         timeout=60)
        sim = SimulatedTee(proc.sim_dir, "sev-snp")
        verify_fresh_attestation(r.json(), sim, spki_der(leaf), bytes.fromhex("22" * 32))
    finally:
        proc.stop()
    log = proc.log()
    assert "existed outside the TEE" in log
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    needles = {"password": password.encode(), **{f"p12-key-line{i}": line.encode() for i, line in
               enumerate(key_pem.splitlines()) if line and not line.startswith("-----")}}
    assert_nowhere(needles, log, proc.data_dirs)
    assert password.encode() not in json.dumps(log).encode()
    assert base64.b64encode(password.encode()) not in log.encode()



def test_the_kmip_socket_listener_serves_the_provisioned_certificate(tmp_path: Path) -> None:
    ca = LocalCa(tmp_path / "ca")
    socket_port = free_port()
    proc = BootstrapProcess(
        tmp_path / "srv", "--socket-server-start", "--socket-server-port", str(socket_port),
        "--socket-server-hostname", "127.0.0.1",
    ).start()
    try:
        proc.wait_bootstrap()
        provisioned = provision(proc, ca)
        context = ssl.create_default_context(cafile=str(ca.cert_file))
        with socket.create_connection(("127.0.0.1", socket_port), timeout=60) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None and x509.load_der_x509_certificate(der) == provisioned.leaf
            tls.sendall(to_binary(request_message(batch_item("DiscoverVersions"))))
            header = _read_exactly(tls, 8)
            answer = from_binary(header + _read_exactly(tls, binary.message_length(header) - 8))
        (item,) = children(answer, "BatchItem")
        assert value(item, "ResultStatus") == "Success"
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log()
    assert not any(proc.tmpdir.iterdir()), "the listener's PKCS#12 outlived the KMS"
    assert_nowhere(secret_needles(derived_keys(proc.sim_dir), provisioned.database_secret), proc.log(),
                   proc.data_dirs)


def _read_exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data
