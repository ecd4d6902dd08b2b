"""Job work gives way to requests for the CPU: on a machine that serves HTTP too, a status
read otherwise queues behind the imports' checks (two imports on two cores, PostgreSQL:
GET p99 26 ms with workers at nice 0, 17 ms at nice 10, same run).

On Linux the nice value of a thread counts only against the threads of its own autogroup,
and every session is an autogroup of its own (a process started by systemd, a container,
`setsid`): a worker that leads its session lowers its autogroup's value as well, or its nice
value would not count against the web process at all.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(nice: int) -> None:
    """Run this process at `nice` (0: as it is; never at a higher priority than now), and its
    autogroup if it leads its session."""
    if nice <= 0 or not hasattr(os, "setpriority"):  # not on Windows
        return
    for thread in _threads():
        try:
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, max(nice, current))
        except ProcessLookupError:
            continue  # a thread that has ended since
        except OSError as error:
            log.warning("cannot lower this worker's priority: %s", error)
            return
    if os.getsid(0) != os.getpid():
        return
    try:
        group_nice = autogroup_nice()
        if group_nice is not None and group_nice < nice:
            AUTOGROUP.write_text(str(nice))
    except (OSError, ValueError) as error:
        log.warning("cannot lower the priority of this worker's autogroup: %s", error)


def autogroup_nice() -> int | None:
    """The nice value of this process's autogroup ("/autogroup-85 nice 0"); None where there
    is none of its own: no autogroups on this system, or the boot session's, for which the
    kernel shows an empty file."""
    try:
        shown = AUTOGROUP.read_text().split()
    except FileNotFoundError:
        return None
    return int(shown[-1]) if shown else None


def _threads() -> list[int]:
    """What setpriority takes for each thread of this process: on Linux every thread has a
    nice value of its own (and those it starts take it on); elsewhere 0, the process."""
    try:
        return [int(thread) for thread in os.listdir("/proc/self/task")]
    except FileNotFoundError:
        return [0]
