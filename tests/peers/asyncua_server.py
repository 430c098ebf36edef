"""A small OPC UA server written with the Python `asyncua` package: a peer nobody here wrote.

Usage: asyncua_server.py PORT [--secure PKI_DIR] [--user NAME --password-env VAR]
                              [--extra-namespaces N] [--counters N] [--bad-node]

Prints READY when listening. Serves namespace `urn:test:python-peer` with an oven whose
values change every 200 ms, at the path `/freeopcua/server/` so that the client has to use
the endpoint URL the server advertises.

- `--secure PKI_DIR`: offer only secured endpoints (Basic256Sha256, Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss, each Sign and SignAndEncrypt). The server's key and certificate are
  made once in PKI_DIR (kept across restarts, like a real server's) with the application
  URI `urn:test:python-peer:server` and the host names `localhost` and `127.0.0.1`.
- `--user NAME --password-env VAR`: accept that user with the password in $VAR (and no
  anonymous access).
- `--extra-namespaces N`: register N other namespaces before the peer's, so that its
  namespace index differs from one start to the next (the reordered-namespace test).
- `--counters N`: also serve N Int64 variables `s=Counter.<i>` holding `i * 1000000 + tick`.
- `--report-sessions`: print `SESSIONS <n>` whenever the number of open sessions changes
  (the leak test counts what the server still holds, not what the client believes).
- `--tick-ms N`: how often the values change (default 200).
- `--clock-offset-s S`: stamp values with a clock S seconds off.
- `--history`: keep the counters' history in memory and serve HistoryRead on them.
- `--bad-node`: serve `s=Line1.Oven.Sensor`, which every 2 s alternates between a Good value
  and BadSensorFailure with no value (null), each with its own source timestamp; the
  timestamp of every bad one is printed as `BAD <iso time>`.
"""
import argparse
import asyncio
import ipaddress
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asyncua import Server, ua
from asyncua.server.user_managers import UserManager
from asyncua.crypto.permission_rules import User, UserRole

NS = "urn:test:python-peer"
APP_URI = "urn:test:python-peer:server"

SECURED = [
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
]


CLOCK_OFFSET = timedelta(0)


def dv(value, vtype, status=ua.StatusCodes.Good):
    # A server with a wrong clock stamps everything with it.
    now = datetime.now(timezone.utc) + CLOCK_OFFSET
    variant = ua.Variant(value, vtype) if value is not None else ua.Variant()
    return ua.DataValue(
        variant, StatusCode=ua.StatusCode(status), SourceTimestamp=now, ServerTimestamp=now
    )


class OneUser(UserManager):
    def __init__(self, name: str, password: str) -> None:
        self.name = name
        self.password = password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == self.name and password == self.password:
            return User(role=UserRole.User)
        return None


def make_certificate(pki: Path) -> tuple[Path, Path]:
    """The server's key and self-signed certificate, made on the first start only."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from cryptography.hazmat.primitives.serialization import Encoding

    from asyncua.crypto.cert_gen import (
        dump_private_key_as_pem,
        generate_private_key,
        generate_self_signed_app_certificate,
    )

    pki.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = pki / "server-key.pem", pki / "server-cert.der"
    if not (key_file.is_file() and cert_file.is_file()):
        key = generate_private_key()
        key_file.write_bytes(dump_private_key_as_pem(key))
        cert = generate_self_signed_app_certificate(
            key,
            "PharmaTwin python peer",
            {"organizationName": "PharmaTwin tests"},
            [
                x509.UniformResourceIdentifier(APP_URI),
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ],
            extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        )
        cert_file.write_bytes(cert.public_bytes(encoding=Encoding.DER))
    return key_file, cert_file


async def main(args) -> None:
    global CLOCK_OFFSET
    CLOCK_OFFSET = timedelta(seconds=args.clock_offset_s)
    user_manager = None
    if args.user:
        user_manager = OneUser(args.user, os.environ[args.password_env])
    server = Server(user_manager=user_manager)
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{args.port}/freeopcua/server/")
    server.set_server_name("PharmaTwin interop peer (python asyncua)")
    if args.secure:
        key_file, cert_file = make_certificate(Path(args.secure))
        await server.set_application_uri(APP_URI)
        await server.load_certificate(str(cert_file))
        await server.load_private_key(str(key_file))
        server.set_security_policy(SECURED)
    if args.user:
        server.set_identity_tokens([ua.UserNameIdentityToken])
    for k in range(args.extra_namespaces):
        await server.register_namespace(f"urn:test:python-peer:filler:{k}")
    idx = await server.register_namespace(NS)
    oven = await server.nodes.objects.add_object(ua.NodeId("Line1.Oven", idx), "Oven")
    temp = await oven.add_variable(ua.NodeId("Line1.Oven.Temperature", idx), "Temperature", 20.0)
    count = await oven.add_variable(
        ua.NodeId("Line1.Oven.Count", idx), "Count", 0, varianttype=ua.VariantType.Int64
    )
    state = await oven.add_variable(ua.NodeId("Line1.Oven.State", idx), "State", "EXECUTE")
    door = await oven.add_variable(ua.NodeId("Line1.Oven.DoorOpen", idx), "DoorOpen", False)
    humidity = await oven.add_variable(ua.NodeId(5001, idx), "Humidity", 45.0)
    sensor = None
    if args.bad_node:
        sensor = await oven.add_variable(ua.NodeId("Line1.Oven.Sensor", idx), "Sensor", 1.0)
    counters = []
    if args.counters:
        folder = await server.nodes.objects.add_object(ua.NodeId("Counters", idx), "Counters")
        for i in range(args.counters):
            counters.append(
                await folder.add_variable(
                    ua.NodeId(f"Counter.{i}", idx), f"Counter{i}", i * 1_000_000,
                    varianttype=ua.VariantType.Int64,
                )
            )
    async with server:
        if args.history and counters:
            await server.historize_node_data_change(counters, count=100_000)
        print("READY", flush=True)
        n = 0
        sessions = None
        while True:
            n += 1
            if args.report_sessions:
                # The server's own table of sessions: what a leak would fill.
                now_open = len(server.iserver._external_sessions)
                if now_open != sessions:
                    sessions = now_open
                    print(f"SESSIONS {sessions}", flush=True)
            await temp.write_value(dv(20.0 + 5.0 * math.sin(n / 10.0), ua.VariantType.Double))
            await count.write_value(dv(n, ua.VariantType.Int64))
            await humidity.write_value(dv(45.0 + math.cos(n / 7.0), ua.VariantType.Double))
            await door.write_value(dv(n % 20 < 10, ua.VariantType.Boolean))
            await state.write_value(dv("EXECUTE" if n % 50 < 40 else "HELD", ua.VariantType.String))
            if sensor is not None and n % 5 == 0:
                if (n // 5) % 2 == 1:
                    bad = dv(None, ua.VariantType.Double, ua.StatusCodes.BadSensorFailure)
                    # Written through the address space: a node's write_value() checks the
                    # type of the (absent) value.
                    await server.write_attribute_value(sensor.nodeid, bad)
                    print(f"BAD {bad.SourceTimestamp.isoformat()}", flush=True)
                else:
                    await sensor.write_value(dv(float(n), ua.VariantType.Double))
            if counters:
                # One write of all counters: thousands of awaits a tick would fall behind.
                for i, c in enumerate(counters):
                    await server.write_attribute_value(
                        c.nodeid, dv(i * 1_000_000 + n, ua.VariantType.Int64)
                    )
            await asyncio.sleep(args.tick_ms / 1000.0)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--secure")
    p.add_argument("--user")
    p.add_argument("--password-env")
    p.add_argument("--extra-namespaces", type=int, default=0)
    p.add_argument("--counters", type=int, default=0)
    p.add_argument("--bad-node", action="store_true")
    p.add_argument("--tick-ms", type=int, default=200)
    p.add_argument("--history", action="store_true")
    p.add_argument("--clock-offset-s", type=float, default=0.0)
    p.add_argument("--report-sessions", action="store_true")
    asyncio.run(main(p.parse_args()))
