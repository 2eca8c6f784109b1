"""Command line: ``python -m airflow_provider_outreach.sandbox`` / ``outreach-sandbox``.

Examples::

    outreach-sandbox --port 8765 --demo
    outreach-sandbox --port 0 --port-file /tmp/port --seed seed.json --latency 0.05 \\
        --lemlist-limit 20/2 --leadlex-limit 10/60 --leadlex-limit 100/utc_day

``--*-limit`` may be repeated (one window each); ``none`` removes a vendor's limit.
``--key VENDOR=KEY`` (repeatable) replaces the default keys of that vendor.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .config import parse_limit_spec
from .server import SandboxServer
from .vendors import DEFAULT_KEYS, VENDORS

DEMO_SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_seed.json")


def _limit_list(specs):
    if specs is None:
        return None
    if any(s.lower() == "none" for s in specs):
        return []
    return [parse_limit_spec(s) for s in specs]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="outreach-sandbox", description="Local HTTP sandbox of the lemlist, LeadLex and DialNexa APIs."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    p.add_argument("--seed", metavar="FILE", help="seed document (JSON)")
    p.add_argument("--demo", action="store_true", help="seed with the bundled demo data")
    p.add_argument("--latency", type=float, metavar="SECONDS", help="added to every vendor request")
    for vendor in VENDORS:
        p.add_argument(
            f"--{vendor}-limit",
            action="append",
            metavar="N/SECONDS",
            help=f"{vendor} rate-limit window (N/SECONDS or N/utc_day; repeatable; 'none')",
        )
    p.add_argument(
        "--key",
        action="append",
        metavar="VENDOR=KEY",
        help="API key accepted for a vendor (repeatable; replaces the default)",
    )
    p.add_argument("--port-file", metavar="PATH", help="write the bound port to this file")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = {}
    limits = {}
    for vendor in VENDORS:
        windows = _limit_list(getattr(args, f"{vendor}_limit"))
        if windows is not None:
            limits[vendor] = windows
    if limits:
        config["limits"] = limits
    if args.latency is not None:
        config["latency"] = args.latency
    keys = None
    if args.key:
        keys = {}
        for item in args.key:
            vendor, sep, key = item.partition("=")
            if not sep or vendor not in VENDORS or not key:
                build_parser().error(f"--key expects VENDOR=KEY with VENDOR in {tuple(VENDORS)}")
            keys.setdefault(vendor, []).append(key)
        keys = {**DEFAULT_KEYS, **keys}
    seed = args.seed or (DEMO_SEED if args.demo else None)
    try:
        server = SandboxServer(
            host=args.host, port=args.port, seed=seed, keys=keys, config=config, access_log=args.access_log
        )
    except (OSError, ValueError, TypeError) as exc:
        print(f"outreach-sandbox: {exc}", file=sys.stderr)
        return 2
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{server.port}\n")
        os.replace(tmp, args.port_file)

    def _on_signal(signum, frame):
        server.request_stop()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    print(f"outreach-sandbox listening on {server.url}", flush=True)
    for vendor in VENDORS:
        print(f"  {vendor}: {server.vendor_url(vendor)}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
