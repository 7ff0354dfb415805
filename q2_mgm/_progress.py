"""Progress of actions and visualizers: one line per step on stdout, which q2cli shows with --verbose. The core
takes a `report` callable instead, so that it prints nothing of its own."""
import sys


def report(message: str) -> None:
    print(f"[q2-mgm] {message}", file=sys.stdout, flush=True)
