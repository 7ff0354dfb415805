"""What the actions share: progress messages (shown by q2cli with --verbose) and device choice."""
import sys

from ..core.inference import resolve_device  # noqa: F401  (re-exported for the actions)


def report(message):
    print(f"[q2-mgm] {message}", file=sys.stdout, flush=True)

