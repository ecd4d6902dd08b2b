"""The embedded server's queue of SQLite writers: how long its first writer has waited."""

import threading
import time

from collect.db.sqlite.base import FairLock


def test_longest_wait_is_that_of_the_first_writer_in_the_queue():
    turns = FairLock()
    assert turns.longest_wait() == 0.0
    turns.acquire()  # a batch holds the turn
    assert turns.longest_wait() == 0.0  # nobody waits for it
    waiter = threading.Thread(target=lambda: (turns.acquire(), turns.release()))
    waiter.start()
    while turns.longest_wait() == 0.0:
        time.sleep(0.001)
    time.sleep(0.05)
    assert turns.longest_wait() >= 0.05
    turns.release()
    waiter.join()
    assert turns.longest_wait() == 0.0
