"""Process memory as the kernel counts it, for the benchmark workers (q2-mgm's and upstream's venvs alike: no
imports beyond the standard library)."""
import pathlib


def memory_mb():
    """VmRSS (now) and VmHWM (peak) of this process, in MB."""
    fields = {}
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def reset_peak():
    """Reset VmHWM, so that the next phase has its own peak; False where the kernel does not allow it."""
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
