"""collect.jobs.priority: a worker lowers its own priority, and its autogroup's when the
autogroup is its alone (it leads its session), never anyone else's. Linux's autogroups are
what these tests are about, so they run where CI runs: on Linux."""

import os
import subprocess
import sys
from ast import literal_eval

from collect.jobs.priority import autogroup_nice

SHOW_PRIORITY = """
import os, threading
from collect.jobs.priority import autogroup_nice, lower_priority

def own_nice(into):
    go.wait()
    into.append(os.getpriority(os.PRIO_PROCESS, 0))  # on Linux: the calling thread's

go, seen = threading.Event(), []
earlier = threading.Thread(target=own_nice, args=[seen])
earlier.start()
lower_priority(int(os.environ["NICE"]))
go.set()
earlier.join()
later = threading.Thread(target=own_nice, args=[seen])
later.start()
later.join()
print(os.getpriority(os.PRIO_PROCESS, 0), *seen)
print(autogroup_nice())
"""


def priority_after(nice: int, *, own_session: bool) -> tuple[list[int], int | None]:
    """After lower_priority(nice) in a fresh process, the nice values of its main thread,
    of a thread started before and one started after, and its autogroup's."""
    done = subprocess.run(
        [sys.executable, "-c", SHOW_PRIORITY],
        env={**os.environ, "NICE": str(nice)},
        capture_output=True,
        text=True,
        check=True,
        start_new_session=own_session,
    )
    process_and_thread, autogroup = done.stdout.split("\n")[:2]
    return [int(value) for value in process_and_thread.split()], literal_eval(autogroup)


def test_a_worker_leading_its_session_lowers_itself_its_threads_and_its_autogroup():
    assert priority_after(7, own_session=True) == ([7, 7, 7], 7)


def test_a_worker_sharing_its_session_leaves_the_sessions_autogroup_alone():
    """Where the tests run in the boot session, the kernel shows no autogroup (None)."""
    ours = autogroup_nice()
    assert priority_after(7, own_session=False) == ([7, 7, 7], ours)


def test_nice_zero_leaves_the_priority_as_it_is():
    assert priority_after(0, own_session=True) == ([0, 0, 0], 0)
