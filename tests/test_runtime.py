"""cnn_core/runtime.py: settings a serving process makes once when it starts."""

import subprocess
import sys

import pytest

ARENAS = """
import ctypes, sys, threading
from cnn_core.runtime import limit_malloc_arenas
print(limit_malloc_arenas())
barrier = threading.Barrier(8)
def work():
    barrier.wait()  # all eight threads alive at once, each allocating through malloc
    blocks = [bytearray(4096) for _ in range(2000)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
sys.stdout.flush()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def arenas_used(env_value: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", ARENAS], capture_output=True, text=True, timeout=60,
                          env={"CNN_MALLOC_ARENAS": env_value, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr.count("Arena ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_server_keeps_two_malloc_arenas_however_many_threads_allocate():
    assert arenas_used("2") == ("2", 2)
    cap, default = arenas_used("0")  # glibc's default: an arena per thread, up to 8 per core
    assert cap == "0" and default > 2


def test_a_bad_arena_setting_is_named():
    done = subprocess.run([sys.executable, "-c", "from cnn_core.runtime import limit_malloc_arenas as f; f()"],
                          capture_output=True, text=True, env={"CNN_MALLOC_ARENAS": "two", "PATH": "/usr/bin:/bin"})
    assert "CNN_MALLOC_ARENAS must be a whole number" in done.stderr
