"""Start the web UI: `python app.py [--host 127.0.0.1] [--port 7860] [--share]`.

Settings come from tutor.toml and TUTOR_* env vars (see tutor/config.py); the flags override
host and port. No public share link unless --share is given; beyond loopback (or with --share)
the UI needs --auth USER:PASSWORD (or TUTOR_AUTH), or an explicit --no-auth.
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from tutor.config import load_settings

    p = argparse.ArgumentParser(description="用AI学AI — the tutor's web UI (Gradio)")
    p.add_argument("--host", default=None, help="address to listen on (default: settings.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: settings.port, 7860)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    p.add_argument("--no-warmup", action="store_true", help="load the models on the first question instead")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help="log-in for the web UI (or TUTOR_AUTH); needed to serve beyond loopback")
    p.add_argument("--no-auth", action="store_true", help="serve beyond loopback without a log-in (trusted networks)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        settings = load_settings(auth=args.auth)
        from tutor.serving import check_exposure

        check_exposure(args.host or settings.ui.host, settings.ui.auth, args.no_auth, args.share)
    except ValueError as e:  # ConfigError is one too
        print(f"error: {e}", file=sys.stderr)
        return 2
    from tutor.ui import launch

    launch(settings, host=args.host, port=args.port, share=args.share, warmup=not args.no_warmup,
           no_auth=args.no_auth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
