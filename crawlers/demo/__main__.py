"""``python -m crawlers.demo [--host H] [--port N] [--day D]``: serve the demo site until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from crawlers.demo.site import DemoSite


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m crawlers.demo", description="Serve the listwatch demo site."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (default 8000)")
    parser.add_argument("--day", type=int, default=0, help="content day 0-4 (larger days behave like 4)")
    parser.add_argument("--bench-pages", type=int, default=2000)
    args = parser.parse_args(argv)
    site = DemoSite(args.host, args.port, day=args.day, bench_pages=args.bench_pages).start()
    print(f"listwatch demo site (day {args.day}) at {site.url}/  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()


if __name__ == "__main__":
    main()
