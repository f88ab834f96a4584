"""Resident-memory figures of this process for the benches (Linux /proc)."""


def vm():
    """{"VmHWM": peak bytes, "VmRSS": current bytes} of this process."""
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                k, v = line.split(":")
                d[k] = int(v.split()[0]) * 1024
    return d


def reset_peak():
    """Reset VmHWM to the current RSS (writing 5 to /proc/self/clear_refs); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
