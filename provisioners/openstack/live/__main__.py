"""``python -m stackcheck_provisioners.openstack.live up|down|status``: the live control plane."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc

from ..cloud import short_error
from .controlplane import DEFAULT_BASE, ControlPlane, NotAvailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackcheck_provisioners.openstack.live")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--purge", action="store_true", help="down: also delete the data")
    parser.add_argument("--base", default=str(DEFAULT_BASE), help="state and data directory")
    args = parser.parse_args(argv)
    plane = ControlPlane(Path(args.base))
    try:
        if args.action == "up":
            timings = plane.up()
            print(f"clouds.yaml: {plane.lay.clouds_yaml} (clouds stackcheck-live, "
                  f"stackcheck-live-admin)")
            print("timings (s):", json.dumps(timings))
        elif args.action == "down":
            for what in plane.down(purge=args.purge):
                print(f"stopped {what}")
        else:
            print(json.dumps(plane.status(), indent=1))
    except (NotAvailable, RuntimeError, TimeoutError) as exc:
        print(f"openstack live: {exc}", file=sys.stderr)
        return 1
    except (os_exc.SDKException, ks_exc.ClientException) as exc:
        print(f"openstack live: an API call failed: {short_error(exc)} (logs: {args.base}/log)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
