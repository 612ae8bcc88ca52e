"""Runs one command at a time and measures it: wall time, exit status, and the peak resident
memory (VmHWM) of the process itself and of each process it starts, read from /proc.

The kernel keeps VmHWM, the high-water mark of resident memory, per process; it is sampled every
few milliseconds until the process ends, so the last sample is the process's peak up to a few
milliseconds before it exits. (wait4's ru_maxrss is no substitute: it is the largest of the
process and the children it waited for, and on Linux it also counts the image of the forking
parent before exec, here the bench's own Python.)
"""

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

INTERVAL = 0.01


@dataclass
class Run:
    argv: list
    ms: float = 0.0
    code: int = 0
    timed_out: bool = False
    own_kib: int = 0  # VmHWM of the process started
    children_kib: dict = field(default_factory=dict)  # pid -> (VmHWM, command line)
    stdout: str = ""
    stderr: str = ""

    @property
    def child_kib(self):
        """The largest peak among the processes it started (the Django process of a CLI run)."""
        return max((kib for kib, _ in self.children_kib.values()), default=0)


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return None


def descendants(root):
    """Pids of every live descendant of root (scanning /proc: no `children` file needed)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def run(argv, env=None, cwd=None, timeout=None, expect=(0,), capture=False):
    """Runs argv and returns a Run. Raises SystemExit on an unexpected exit status, unless the
    run timed out (then the whole process group is killed and Run.timed_out is set)."""
    result = Run(argv=list(argv))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out if capture else subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        pid = proc.pid
        last_scan = 0.0
        while True:
            done, status, _ = os.wait4(pid, os.WNOHANG)
            if done:
                break
            now = time.perf_counter()
            own = hwm_kib(pid)
            if own is not None:
                result.own_kib = max(result.own_kib, own)
            if now - last_scan > 2 * INTERVAL:
                last_scan = now
                for child in descendants(pid):
                    kib = hwm_kib(child)
                    if kib is not None:
                        old = result.children_kib.get(child, (0, ""))
                        result.children_kib[child] = (max(old[0], kib), old[1] or cmdline(child))
            else:
                for child in list(result.children_kib):
                    kib = hwm_kib(child)
                    if kib is not None and kib > result.children_kib[child][0]:
                        result.children_kib[child] = (kib, result.children_kib[child][1])
            if timeout is not None and now - started > timeout:
                result.timed_out = True
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status, _ = os.wait4(pid, 0)
                break
            time.sleep(INTERVAL)
        result.ms = (time.perf_counter() - started) * 1000
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        result.code = proc.returncode
        if capture:
            out.seek(0)
            result.stdout = out.read().decode(errors="replace")
        err.seek(0)
        result.stderr = err.read().decode(errors="replace")
    if not result.timed_out and result.code not in expect:
        raise SystemExit(f"{' '.join(map(str, argv))} exited {result.code}:\n{result.stderr[-3000:]}")
    return result
