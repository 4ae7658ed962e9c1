"""`python -m charter.runtime.probe URL`: a container health check without curl or wget.

Exits 0 when the URL answers 200 within the deadline, 1 otherwise (the status or the error
on one line). Charter's image is a slim Python: this is its `curl -f`.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

#: Below the health checks' own timeouts, so a hung endpoint is a failure, not a kill.
DEADLINE_SECONDS = 4.0


def probe(url: str, deadline: float = DEADLINE_SECONDS) -> str | None:
    """None when `url` answers 200; else why not."""
    try:
        with urllib.request.urlopen(url, timeout=deadline) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable: {exc}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m charter.runtime.probe URL", file=sys.stderr)
        return 2
    problem = probe(argv[0])
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
