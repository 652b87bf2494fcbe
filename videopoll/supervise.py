"""Run the Procfile's processes and restart any that dies, so one crash never stops the stack.

honcho stops every process when one exits, so a worker that died took the API, beat and Flower
down with it and jobs stalled until a person noticed. Here a process that exits is started
again after a backoff that doubles from 1 s to 30 s. A run that lasted ``stable_seconds``
counts as healthy and resets the backoff; ``max_fast_crashes`` short runs in a row mean the
process cannot start (bad configuration, port taken), and then the whole stack stops with an
error rather than run on without it looking healthy (see ``RestartPolicy``).

Each process runs in its own process group, so whatever it started (gunicorn's workers) is
stopped with it and killed if it dies. SIGINT or SIGTERM to the supervisor stops everything:
every group gets SIGTERM, and SIGKILL for what is left after a grace period.

    python -m videopoll.supervise [-f Procfile] [name ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

_print_lock = threading.Lock()


@dataclass(frozen=True)
class RestartPolicy:
    stable_seconds: float = 10.0  # a run this long was healthy: reset the backoff
    max_fast_crashes: int = 5  # this many shorter runs in a row: give up
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    stop_grace_seconds: float = 15.0  # SIGTERM to SIGKILL when stopping


def say(name: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<8}| {line.rstrip()}\n")
        sys.stdout.flush()


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines, in order; blank lines and ``#`` comments are skipped."""
    entries: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


@dataclass
class Child:
    name: str
    command: str
    policy: RestartPolicy
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff: float = 0.0
    fast_crashes: int = 0

    def start(self) -> None:
        # The shell expands ${VAR:-default} as honcho does, then becomes the process (exec: one
        # command per line). Its own process group holds whatever it starts (gunicorn's
        # workers), so nothing of it outlives it: see reap().
        self.proc = subprocess.Popen(["/bin/sh", "-c", f"exec {self.command}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None
        say("system", f"{self.name} started (pid={self.proc.pid})")
        assert self.proc.stdout is not None
        threading.Thread(target=_pump, args=(self.name, self.proc.stdout), daemon=True).start()

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the process's group; False when nothing of it is left."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def reap(self) -> None:
        """Kill what the dead process left in its group (a killed gunicorn's workers hold
        its port), so the restart starts clean."""
        self.signal_group(signal.SIGKILL)

    def on_exit(self, code: int) -> bool:
        """Plan the restart; False when the process keeps crashing and we give up on it."""
        policy = self.policy
        uptime = time.monotonic() - self.started_at
        if uptime >= policy.stable_seconds:
            self.backoff, self.fast_crashes = 0.0, 0
        else:
            self.fast_crashes += 1
        if self.fast_crashes >= policy.max_fast_crashes:
            say("system", f"{self.name} exited {code} {self.fast_crashes} times within "
                          f"{policy.stable_seconds:.0f}s of starting: giving up")
            return False
        self.backoff = min(max(self.backoff * 2, policy.first_backoff_seconds),
                           policy.max_backoff_seconds)
        say("system", f"{self.name} exited {code} after {uptime:.1f}s; "
                      f"restarting in {self.backoff:.0f}s")
        self.restart_at = time.monotonic() + self.backoff
        return True


def _pump(name: str, stream: IO[bytes]) -> None:
    for raw in iter(stream.readline, b""):
        say(name, raw.decode(errors="replace"))


class Supervisor:
    def __init__(self, commands: dict[str, str], policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self.children = [Child(name, command, self.policy) for name, command in commands.items()]
        self.stopping = False

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        for child in self.children:
            child.start()
        status = 0
        while not self.stopping:
            if not self._tend():
                status = 1
                break
            time.sleep(0.2)
        self._stop_all()
        return status

    def _tend(self) -> bool:
        """Notice exits and restart what is due; False when a process is given up on."""
        for child in self.children:
            assert child.proc is not None
            if child.restart_at is None:
                code = child.proc.poll()
                if code is None or self.stopping:
                    continue
                child.reap()
                if not child.on_exit(code):
                    return False
            elif time.monotonic() >= child.restart_at and not self.stopping:
                child.start()
        return True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after the grace period."""
        say("system", f"stopping {len(self.children)} processes")
        for child in self.children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_grace_seconds
        for child in self.children:
            assert child.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            while child.signal_group(0) and time.monotonic() < deadline:
                time.sleep(0.1)  # its children may still be finishing
            child.reap()
            child.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videopoll.supervise", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--procfile", default="Procfile", type=Path)
    parser.add_argument("names", nargs="*", help="processes to run (default: all)")
    args = parser.parse_args(argv)
    commands = read_procfile(args.procfile)
    unknown = set(args.names) - set(commands)
    if unknown:
        parser.error(f"not in {args.procfile}: {', '.join(sorted(unknown))}")
    if args.names:
        commands = {name: commands[name] for name in args.names}
    return Supervisor(commands).run()


if __name__ == "__main__":
    sys.exit(main())
