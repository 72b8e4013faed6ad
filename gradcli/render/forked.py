"""A long document made by two processes at once: the second half in a forked child (issue 17).

Formatting a 10^6-node `eval --json` document is Python work (float.__repr__, joins), which one
process does on one core whatever its threads. `pieces(n, size, make)` yields make(a, b) for
a = 0, size, 2·size, ... < n, in that order, exactly as a plain loop would; for a long run on a
machine with a second core it forks a child that makes the pieces of the second half into an
unnamed temporary file while this process makes (and hands out) the first half, then hands out
the child's text. The child sees the very same objects (fork copies the process), so its text is
the text this process would have made: tests/test_forked.py compares them byte for byte.

Nothing is lost or doubled when anything goes wrong: the child writes to a file nobody else can
see (it has no name, and is gone when both processes close it), reports success by exiting with
status 0 after its last write, which is the text's length, and any other end (an error, a full
disk, a signal, a child that cannot be started) has this process make the second half itself.
Output is written by this process alone, in order. If this process stops early (a closed pipe,
Ctrl-C), the child is killed and reaped.

Used only where it is safe and pays: on Linux, from the main thread of a process that runs no
other thread (lanes' idle workers aside: they wait on a queue the child never uses), so the child
inherits no lock held elsewhere; for at least MIN_NODES nodes; with a second CPU; not with
GRADCLI_THREADS=1; and with memory to spare (`_room`): the two processes together hold more than
one would, the price of the time saved. A caller that can hand over its columns as machine arrays
(`packed`) has both processes read those instead of Python objects, which keeps the price small:
for 10^6 nodes about 278 MiB summed over both against 246 for one process (376 MiB when they
read the objects: see pieces(); 285 without `_trim`).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Iterator

#: Below this many nodes one process makes the document sooner than two (fork and hand-over
#: cost a few milliseconds).
MIN_NODES = 50_000
#: The child's share of the nodes: it makes each a little slower (its first write to a shared
#: page copies it), and this process copies the child's text to the output; they even out.
CHILD_SHARE = 0.50
#: Bytes per write of the child, and per read of its text.
BUFFER = 1 << 20
#: The child's file ends in the length of its text, in this many bytes: a child that stopped
#: early, whatever its exit status, leaves a file that does not end so.
TRAILER = 8


def _enabled(n: int) -> bool:
    if n < MIN_NODES or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread() or _other_threads():
        return False  # a fork would copy another thread's locks in whatever state they are
    from .. import lanes

    return lanes.workers() >= 2 and _room(*_memory())


def _room(rss: int, available: int | None, cgroup_left: int | None) -> bool:
    """Whether a second copy of this process would fit: the child shares this process's pages,
    but each page that either process writes while both run is copied, and Python writes the
    reference count of every object it reads (a 10^6-node document read as objects copies
    about 60% of this process; read from packed arrays, about 15%). The check stays for the
    worst case: the machine's available memory, and the room left under this process's cgroup
    limit where one is set, must each exceed twice this process's resident size."""
    if available is None or available <= 2 * rss:
        return False
    return cgroup_left is None or cgroup_left > 2 * rss


def _memory() -> tuple[int, int | None, int | None]:
    """(this process's resident bytes, MemAvailable, bytes left under its cgroup's limit, or
    None where there is no limit); None for what cannot be read."""
    rss, available, left = 0, None, None
    try:
        with open("/proc/self/statm") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        return rss, None, None
    try:
        with open("/proc/self/cgroup") as fh:
            groups = [line.rstrip("\n").split(":", 2) for line in fh]
    except OSError:
        return rss, available, None
    for _, controllers, path in (g for g in groups if len(g) == 3):
        if controllers == "":  # cgroup v2
            files = ("/sys/fs/cgroup" + path.rstrip("/"), "memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # cgroup v1
            files = ("/sys/fs/cgroup/memory" + path.rstrip("/"), "memory.limit_in_bytes",
                     "memory.usage_in_bytes")
        else:
            continue
        try:
            with open(f"{files[0]}/{files[1]}") as fh:
                limit = fh.read().strip()
            cap = None if limit == "max" else int(limit)
            with open(f"{files[0]}/{files[2]}") as fh:
                used = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if cap is not None and cap < 1 << 60:  # v1 writes "no limit" as about 2^63
            left = cap - used if left is None else min(left, cap - used)
    return rss, available, left


def _other_threads() -> list[threading.Thread]:
    """The threads besides the main one and lanes' idle workers."""
    main = threading.main_thread()
    return [t for t in threading.enumerate()
            if t is not main and not t.name.startswith("gradcli-lane")]


def pieces(n: int, size: int, make: Callable[[int, int], str],
           packed: Callable[[], Callable[[int, int], str] | None] | None = None
           ) -> Iterator[str]:
    """make(a, min(a + size, n)) for a in range(0, n, size), in order (see the module's text).

    `packed`, called only when two processes will share the work, returns a maker of the same
    text that reads machine arrays made before the fork instead of Python objects (or None).
    Python writes the reference count of every object it reads, so each page of objects
    either process reads while both run is copied: a 10^6-node document's floats, tuples and
    ints, about 130 MB. Arrays are read without writes."""
    if not _enabled(n):
        yield from _serial(0, n, size, make)
        return
    make = (packed() if packed is not None else None) or make
    _trim()
    mid = int(n * (1.0 - CHILD_SHARE)) // size * size
    child = _Child.start(mid, n, size, make)
    if child is None:
        yield from _serial(0, n, size, make)
        return
    try:
        yield from _serial(0, mid, size, make)
        if child.finished():
            yield from child.text()
        else:
            yield from _serial(mid, n, size, make)
    finally:
        child.close()


def _trim() -> None:
    """Hand the C heap's free pages back to the system before forking (glibc's malloc_trim):
    memory freed earlier (the parser's, the sweeps') stays resident in the heap, and after the
    fork both processes would share those pages, each counting them and either copying one it
    writes to. About 2 ms and 12 MiB at 10^6 nodes. Nothing where the C library has no
    malloc_trim (musl) or ctypes is missing."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (ImportError, OSError, AttributeError):
        pass


def _serial(start: int, stop: int, size: int, make) -> Iterator[str]:
    for a in range(start, stop, size):
        yield make(a, min(a + size, stop))


class _Child:
    """The forked maker of nodes mid..n-1 and its unnamed file."""

    def __init__(self, pid: int, fd: int):
        self.pid, self.fd, self.done, self.length = pid, fd, False, 0

    @classmethod
    def start(cls, mid: int, n: int, size: int, make) -> "_Child | None":
        import tempfile

        try:
            with tempfile.TemporaryFile() as fh:  # unnamed (O_TMPFILE, or unlinked at once)
                fd = os.dup(fh.fileno())
        except OSError:
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:  # no memory or process slot for a child: one process does it all
            os.close(fd)
            return None
        if pid == 0:  # the child: make the pieces, write them, and leave without cleaning up
            status = 1
            try:
                import gc

                gc.disable()  # nothing here makes cycles; and gc would touch (copy) every page
                _write_all(fd, _serial(mid, n, size, make))
                status = 0
            except BaseException:  # noqa: BLE001 - any failure: the parent makes it instead
                pass
            finally:
                os._exit(status)
        return cls(pid, fd)

    def finished(self) -> bool:
        """Wait for the child; whether it wrote all of its text (status 0, and the file ends
        in the text's length, written after the text's last byte)."""
        _, status = _wait(self.pid)
        self.done = True
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            return False
        size = os.fstat(self.fd).st_size
        if size < TRAILER:
            return False
        self.length = size - TRAILER
        return int.from_bytes(os.pread(self.fd, TRAILER, self.length), "little") == self.length

    def text(self) -> Iterator[str]:
        """The child's text, in pieces of about BUFFER bytes, decoded."""
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        while offset < self.length:
            data = os.pread(self.fd, min(BUFFER, self.length - offset), offset)
            if not data:  # pragma: no cover - the file was checked whole in finished()
                raise OSError("the second half of the document could not be read back")
            offset += len(data)
            yield decoder.decode(data)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def close(self) -> None:
        if not self.done:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            _wait(self.pid)
            self.done = True
        os.close(self.fd)


def _wait(pid: int) -> tuple[int, int]:
    while True:
        try:
            return os.waitpid(pid, 0)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            continue
        except ChildProcessError:  # reaped already (a SIGCHLD handler): count it as failed
            return pid, 1 << 8


def _write_all(fd: int, texts: Iterator[str]) -> None:
    """The texts, UTF-8, then their length in bytes (TRAILER bytes, little-endian)."""
    buf: list[str] = []
    size = total = 0
    for t in texts:
        buf.append(t)
        size += len(t)
        if size >= BUFFER:
            total += _write(fd, "".join(buf).encode("utf-8"))
            buf, size = [], 0
    if buf:
        total += _write(fd, "".join(buf).encode("utf-8"))
    _write(fd, total.to_bytes(TRAILER, "little"))


def _write(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        k = os.write(fd, view)
        view = view[k:]
    return len(data)
