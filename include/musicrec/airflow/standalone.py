"""`make airflow`: Airflow's standalone mode for this project, stopped whole by Ctrl-C or SIGTERM.

`airflow standalone` starts the api-server, scheduler, dag-processor and triggerer as `airflow ...` commands,
and the scheduler starts the LocalExecutor's workers; stopped with SIGTERM, it leaves them running, and the
workers ignore SIGTERM. So it runs here in a session of its own, and on Ctrl-C, SIGTERM or SIGHUP every
process of it is stopped: SIGTERM first, SIGKILL for what is left after a grace period. Its processes are
found by their session and by descent, listed before any is signalled (an orphan loses its parent).

The LocalExecutor starts up to `parallelism` worker processes, each holding Airflow's imports (about 70 MB);
Airflow's default, 32, is sized for a server. Unless the environment sets it, parallelism is twice the
machine's cores (at least 4): a run's tasks beyond its shards are light, and a shard's process pool uses
the cores of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

GRACE_S = 10.0


def parallelism(cores: int) -> int:
    return max(4, 2 * cores)


def environment() -> dict[str, str]:
    from musicrec.analysis import cores

    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # standalone starts its components as `airflow ...` commands
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")  # the UI and the plugin's API show the library
    if "AIRFLOW__API__PORT" in env:  # tasks reach the execution API at the base URL, by default on port 8080
        env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{env['AIRFLOW__API__PORT']}/")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(parallelism(cores.machine_cores())))
    # The scheduler and the triggerer serve their task logs on fixed ports; where another Airflow on this
    # host (another checkout's `make airflow`) has them, this one takes free ones.
    for name, default in LOG_SERVER_PORTS.items():
        if name not in env and not _free(default):
            env[name] = str(_any_free_port())
            print(f"port {default} is taken (another Airflow here?): {name}={env[name]}", file=sys.stderr)
    return env


LOG_SERVER_PORTS = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": 8793,
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": 8794,
}


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_of(session: int) -> list:
    """Every process of the session that `session` leads, and every descendant of its leader."""
    import psutil

    found = {}
    try:
        leader = psutil.Process(session)
        found[leader.pid] = leader
        found.update((p.pid, p) for p in leader.children(recursive=True))
    except psutil.NoSuchProcess:
        pass
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session:
                found[process.pid] = process
        except (ProcessLookupError, PermissionError):
            continue
    return list(found.values())


def stop(session: int, grace_s: float = GRACE_S) -> int:
    """Stop every process of the session; returns how many there were."""
    import psutil

    processes = processes_of(session)
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    late = {p.pid: p for p in [*alive, *processes_of(session)]}
    for process in late.values():
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(late.values()), timeout=grace_s)
    return len(processes)


class _Stop(Exception):
    def __init__(self, signum: int):
        self.signum = signum


def _raise_stop(signum, frame):
    raise _Stop(signum)


def main() -> int:
    airflow = Path(sys.executable).parent / "airflow"
    child = subprocess.Popen([str(airflow), "standalone"], env=environment(), start_new_session=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    received = None
    try:
        child.wait()
    except _Stop as stopped:
        received = stopped.signum
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C does not cut the stopping short
        print(f"\nstopping Airflow (up to {2 * GRACE_S:.0f} s) ...", file=sys.stderr, flush=True)
    count = stop(child.pid)  # also what is left when standalone ended by itself
    child.wait()
    if received is None:
        return child.returncode
    print(f"stopped Airflow: {count} processes", file=sys.stderr, flush=True)
    return 128 + received


if __name__ == "__main__":
    sys.exit(main())
