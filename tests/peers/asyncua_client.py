"""Reads a PharmaTwin simulator with the Python `asyncua` client: a peer nobody here wrote.

Usage: asyncua_client.py ENDPOINT NAMESPACE_URI NODE_ID... Prints one JSON object: the
namespace index, the browse names under Objects, and for each node id (string identifier)
its value, status and source timestamp.
"""
import asyncio
import json
import sys

from asyncua import Client, ua


async def main(endpoint: str, ns_uri: str, ids: list[str]) -> None:
    async with Client(url=endpoint, timeout=10) as client:
        idx = await client.get_namespace_index(ns_uri)
        objects = client.nodes.objects
        names = [(await c.read_browse_name()).Name for c in await objects.get_children()]
        out = {"namespace_index": idx, "objects": names, "values": {}}
        for ident in ids:
            node = client.get_node(ua.NodeId(ident, idx))
            dv = await node.read_data_value()
            out["values"][ident] = {
                "value": dv.Value.Value if dv.Value is not None else None,
                "status": dv.StatusCode.name if dv.StatusCode is not None else "Good",
                "good": dv.StatusCode is None or dv.StatusCode.is_good(),
                "source_ts": dv.SourceTimestamp.isoformat() if dv.SourceTimestamp else None,
            }
        print(json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
