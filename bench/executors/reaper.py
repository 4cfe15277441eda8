"""Ends every process of a local Ray instance when the driver that started it dies, SIGKILL
included (Linux; elsewhere nothing is started). Ray's gcs_server, raylet and workers follow a
dead driver, but its DashboardAgent and RuntimeEnvAgent are reparented and live on.

``watch(session_dir, ray_dir)`` starts this file as a tiny stdlib-only process that holds the
read end of a pipe whose write end only the driver holds. When the pipe reaches EOF (the
driver closed it after ``ray.shutdown()``, or the driver died) it sends SIGTERM, then after
``GRACE`` seconds SIGKILL, to each process of that session, then exits. A process belongs to
the session when either

- its command line names the session folder and a file of the ray package (``gcs_server``,
  ``raylet``, the monitors, the dashboard: started with ``--session-dir=...`` and the like), or
- its title starts with ``ray::`` (a worker or an agent, whose title hides its command line)
  and it holds a file open in the session folder (its logs).

So a process of another Ray instance, or a user's ``less`` of a log file, is never signalled;
nor is the driver, nor the reaper itself. Each signal goes through a pidfd taken before the
process is checked again, so a reused pid is never hit. A cluster joined with
``--ray-address`` gets no reaper."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

__all__ = ["GRACE", "Reaper", "main", "watch"]

GRACE = 3.0  # seconds between SIGTERM and SIGKILL


class Reaper:
    """The driver's end: ``close()`` after ``ray.shutdown()`` lets the reaper sweep what is
    left (normally nothing) and exit; the driver's death does the same without a call."""

    def __init__(self, proc: subprocess.Popen[bytes], fd: int) -> None:
        self._proc, self._fd = proc, fd

    def close(self, timeout: float = GRACE + 5) -> None:
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # still sweeping: it exits on its own
            pass


def watch(session_dir: str, ray_dir: str) -> Reaper | None:
    """Start the reaper of the Ray session in ``session_dir`` (a folder such as
    ``/tmp/ray/session_...``) whose programs lie under ``ray_dir`` (the ray package). None
    off Linux. The reaper inherits only the pipe's read end, in a session of its own (a
    Ctrl-C or a hangup of the driver's terminal does not end it before the driver)."""
    if not sys.platform.startswith("linux"):
        return None
    r, w = os.pipe()  # both non-inheritable: only r is passed on, below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", __file__, str(r), session_dir, ray_dir],
            pass_fds=(r,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        os.close(w)
        raise
    finally:
        os.close(r)
    return Reaper(proc, w)


def _started(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


class _Session:
    """Which processes belong to one Ray session (the rules in the module docstring)."""

    def __init__(self, session_dir: str, ray_dir: str, spare: dict[int, int | None]) -> None:
        names = {os.path.abspath(session_dir), os.path.realpath(session_dir)}
        self._dirs = tuple(sorted(names))
        alternatives = b"|".join(re.escape(os.fsencode(d)) for d in self._dirs)
        self._names = re.compile(b"(?:" + alternatives + b")(?:/|\\x00|$)")
        rays = {os.path.abspath(ray_dir), os.path.realpath(ray_dir)}
        alternatives = b"|".join(re.escape(os.fsencode(d)) for d in sorted(rays))
        self._ray = re.compile(b"(?:^|[\\x00=])(?:" + alternatives + b")/")
        self._spare = spare  # pid -> start time: the driver and this process

    def _holds_a_file(self, pid: int) -> bool:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if any(target == d or target.startswith(d + "/") for d in self._dirs):
                return True
        return False

    def owns(self, pid: int) -> bool:
        if pid in self._spare and _started(pid) == self._spare[pid]:
            return False
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            return False
        if cmdline.startswith(b"ray::"):
            return self._holds_a_file(pid)
        return bool(self._names.search(cmdline) and self._ray.search(cmdline))

    def members(self) -> set[int]:
        return {int(p) for p in os.listdir("/proc") if p.isdigit() and self.owns(int(p))}

    def signal(self, pid: int, sig: int) -> None:
        """Send ``sig`` to ``pid`` if it still belongs to the session, through a pidfd taken
        before the check (so a pid reused meanwhile is not hit)."""
        pidfd = -1
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        except (AttributeError, OSError):  # no pidfd (an old kernel): check, then kill
            pass
        try:
            if self.owns(pid):
                if pidfd >= 0:
                    signal.pidfd_send_signal(pidfd, sig)
                else:
                    os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        finally:
            if pidfd >= 0:
                os.close(pidfd)


def sweep(session: _Session, grace: float = GRACE) -> None:
    """SIGTERM every member, wait up to ``grace`` seconds, SIGKILL whatever still belongs
    (including any started meanwhile)."""
    left = session.members()
    for pid in left:
        session.signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid for pid in left if session.owns(pid)}
    for _ in range(3):
        left |= session.members()
        if not left:
            return
        for pid in left:
            session.signal(pid, signal.SIGKILL)
        time.sleep(0.2)
        left = {pid for pid in left if session.owns(pid)}


def main(argv: list[str]) -> None:
    """``reaper.py FD SESSION_DIR RAY_DIR``: block on FD until EOF, then sweep."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    fd, session_dir, ray_dir = int(argv[0]), argv[1], argv[2]
    driver = os.getppid()
    spare = {driver: _started(driver), os.getpid(): _started(os.getpid())}
    session = _Session(session_dir, ray_dir, spare)
    while os.read(fd, 4096):  # nothing is ever written: only EOF ends the wait
        pass
    sweep(session)


if __name__ == "__main__":
    main(sys.argv[1:])
