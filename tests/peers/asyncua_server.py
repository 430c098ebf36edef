"""A small OPC UA server written with the Python `asyncua` package: a peer nobody here wrote.

Usage: asyncua_server.py PORT. Prints READY when listening. Serves namespace
`urn:test:python-peer` with an oven whose values change every 200 ms, at the path
`/freeopcua/server/` so that the client has to use the endpoint URL the server advertises.
"""
import asyncio
import math
import sys
from datetime import datetime, timezone

from asyncua import Server, ua

NS = "urn:test:python-peer"


def dv(value, vtype):
    now = datetime.now(timezone.utc)
    return ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=now, ServerTimestamp=now)


async def main(port: int) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/freeopcua/server/")
    server.set_server_name("PharmaTwin interop peer (python asyncua)")
    idx = await server.register_namespace(NS)
    oven = await server.nodes.objects.add_object(ua.NodeId("Line1.Oven", idx), "Oven")
    temp = await oven.add_variable(ua.NodeId("Line1.Oven.Temperature", idx), "Temperature", 20.0)
    count = await oven.add_variable(
        ua.NodeId("Line1.Oven.Count", idx), "Count", 0, varianttype=ua.VariantType.Int64
    )
    state = await oven.add_variable(ua.NodeId("Line1.Oven.State", idx), "State", "EXECUTE")
    door = await oven.add_variable(ua.NodeId("Line1.Oven.DoorOpen", idx), "DoorOpen", False)
    humidity = await oven.add_variable(ua.NodeId(5001, idx), "Humidity", 45.0)
    async with server:
        print("READY", flush=True)
        n = 0
        while True:
            n += 1
            await temp.write_value(dv(20.0 + 5.0 * math.sin(n / 10.0), ua.VariantType.Double))
            await count.write_value(dv(n, ua.VariantType.Int64))
            await humidity.write_value(dv(45.0 + math.cos(n / 7.0), ua.VariantType.Double))
            await door.write_value(dv(n % 20 < 10, ua.VariantType.Boolean))
            await state.write_value(dv("EXECUTE" if n % 50 < 40 else "HELD", ua.VariantType.String))
            await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
