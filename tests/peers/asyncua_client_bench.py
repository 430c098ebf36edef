"""The Python `asyncua` client doing the OPC UA connector's job, as the peer of
`pharmatwin bench-opcua`: subscribe to the load server's counters, count the data-change
notifications a handler receives, and check the counters for lost increments.

Usage: asyncua_client_bench.py ENDPOINT NAMESPACE_URI ITEMS SECONDS PUBLISHING_MS QUEUE_SIZE

The node ids follow `sites::simulator::load_site`: `load.bank-BBBB.cII`, 100 per bank.
Prints progress on stderr; on stdout `window start` and `window end` as the measuring
window opens and closes (the bench reads the server's CPU then), and one JSON object:
{"subscribed_s", "seconds", "received", "values_per_s", "cpu_s", "lost", "max_value",
 "error"}. `received` and `cpu_s` cover the measuring window only (after subscribing and a
second of warm-up); `lost` counts skipped counter values over the whole run.
"""
import asyncio
import json
import sys
import time

from asyncua import Client, ua

BANK = 100
CHUNK = 1000


class Counter:
    """The handler: as little work per notification as a useful client can do."""

    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self.max_value = 0
        self.last: dict[int, int] = {}

    def datachange_notification(self, node, val, data) -> None:
        self.received += 1
        key = id(node)
        last = self.last.get(key)
        if isinstance(val, int):
            if last is not None and val > last + 1:
                self.lost += val - last - 1
            if last is None or val > last:
                self.last[key] = val
            if val > self.max_value:
                self.max_value = val

    def status_change_notification(self, status) -> None:
        print(f"asyncua peer: subscription status change {status}", file=sys.stderr, flush=True)


def node_ids(items: int) -> list[str]:
    return [f"load.bank-{i // BANK:04}.c{i % BANK:02}" for i in range(items)]


async def main(endpoint: str, ns_uri: str, items: int, seconds: float, publishing_ms: float,
               queue_size: int) -> None:
    out = {"received": 0, "seconds": 0.0, "values_per_s": 0.0, "cpu_s": 0.0, "lost": 0,
           "max_value": 0, "subscribed_s": 0.0, "error": None}
    counter = Counter()
    window: dict = {}
    t0 = time.monotonic()
    try:
        # A generous timeout: under load the event loop answers late.
        async with Client(url=endpoint, timeout=30) as client:
            idx = await client.get_namespace_index(ns_uri)
            nodes = [client.get_node(ua.NodeId(i, idx)) for i in node_ids(items)]
            sub = await client.create_subscription(publishing_ms, counter)
            for k in range(0, len(nodes), CHUNK):
                await sub.subscribe_data_change(
                    nodes[k:k + CHUNK], queuesize=queue_size, sampling_interval=0.0)
            out["subscribed_s"] = round(time.monotonic() - t0, 2)
            print(f"asyncua peer: {items} items subscribed in {out['subscribed_s']} s",
                  file=sys.stderr, flush=True)
            await asyncio.sleep(1.0)
            start_n, start_cpu, start = counter.received, time.process_time(), time.monotonic()
            window.update(n=start_n, cpu=start_cpu, at=start)
            print("window start", flush=True)
            next_report = start + 5
            while (now := time.monotonic()) - start < seconds:
                await asyncio.sleep(min(0.5, max(0.0, start + seconds - now)))
                if time.monotonic() >= next_report:
                    next_report += 5
                    print(f"asyncua peer: {time.monotonic() - start:.0f}/{seconds:.0f} s, "
                          f"{counter.received - start_n} values", file=sys.stderr, flush=True)
            window["end"] = (counter.received, time.process_time(), time.monotonic())
            print("window end", flush=True)
            try:
                await asyncio.wait_for(sub.delete(), 10)
            except Exception:  # the figures are taken; a slow goodbye changes nothing
                pass
    except Exception as e:  # reported in the JSON: falling over under load is a result too
        out["error"] = f"{type(e).__name__}: {e}"
    if "at" in window:
        # Up to the end of the window, or to the failure if the client fell over in it.
        n, cpu, at = window.get("end") or (counter.received, time.process_time(), time.monotonic())
        elapsed = at - window["at"]
        out["received"] = n - window["n"]
        out["seconds"] = round(elapsed, 3)
        out["values_per_s"] = round(out["received"] / elapsed, 1) if elapsed > 0 else 0.0
        out["cpu_s"] = round(cpu - window["cpu"], 3)
    out["lost"] = counter.lost
    out["max_value"] = counter.max_value
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    a = sys.argv
    asyncio.run(main(a[1], a[2], int(a[3]), float(a[4]), float(a[5]), int(a[6])))
