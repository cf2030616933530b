"""A real one-node Slurm cluster for the tests: munged, slurmctld and slurmd on localhost, from Debian's
packages (.ci/run installs them without Recommends: slurmctld slurmd slurm-client munge).

The configuration is the project's own (the facts in the team's Slurm findings): one node copied from
`slurmd -C`, partition `debug`, no cgroups, no accounting, and a scheduler tuned so that a requeued job runs
again within seconds (cred_expire=10, sched_interval=2) instead of minutes. State and logs live in a
temporary folder; every daemon started here is stopped by its pid at the end. The config goes to Slurm's
default path, /etc/slurm/slurm.conf, so that sbatch, squeue and scontrol need no SLURM_CONF.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by dropcli's tests (tests/slurm_cluster.py)"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
PACKAGES = "slurmctld slurmd slurm-client munge"


class Unavailable(Exception):
    """Slurm cannot run here (the reason says why): the tests that need it skip."""


@dataclass
class Cluster:
    state: Path
    partition: str = "debug"
    pids: dict[str, int] = field(default_factory=dict)  # the daemons this process started

    def run(self, *command: str, check: bool = True, timeout: float = 30) -> str:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job Slurm still knows (finished ones too, for MinJobAge): id, array task, state, restarts."""
        out = self.run("squeue", "-h", "-t", "all", "-o", "%i|%T|%r")
        rows = []
        for line in out.splitlines():
            job, state, reason = line.split("|")
            rows.append({"job": job, "state": state, "reason": reason})
        return rows

    def job_details(self, job: str) -> dict[str, str]:
        """scontrol's fields of one job (e.g. 12_0): JobState, Restarts, BatchFlag ..."""
        text = self.run("scontrol", "show", "job", "-o", job)
        return dict(part.split("=", 1) for part in text.split() if "=" in part)

    def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.run("sinfo", "-h", "-o", "%t", check=False).split()
            if states and all(state == "idle" for state in states):
                return
            time.sleep(0.2)
        raise Unavailable(f"the Slurm node did not become idle within {timeout:.0f} s (logs in {self.state})")

    def cancel_all(self) -> None:
        self.run("scancel", "--user", "root", check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(j["state"] in ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING")
                                                  for j in self.jobs()):
            time.sleep(0.3)


def alive(pid: int, program: str) -> bool:
    """Running, and not a zombie (here PID 1 reaps late, and kill -0 calls a zombie alive)."""
    try:
        out = subprocess.run(["ps", "-o", "stat=,comm=", "-p", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return False
    fields = out.split()
    return len(fields) == 2 and not fields[0].startswith("Z") and fields[1].startswith(program[:15])


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def configuration(state: Path) -> str:
    node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    fields = dict(part.split("=", 1) for part in node.split())
    fields["RealMemory"] = str(int(int(fields["RealMemory"]) * 0.9))
    host = fields["NodeName"]
    node_line = " ".join(f"{key}={value}" for key, value in fields.items() if key != "UpTime")
    return "\n".join([
        MARK,
        "ClusterName=dropcli-tests",
        f"SlurmctldHost={host}(127.0.0.1)",
        "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge", "MpiDefault=none",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "ReturnToService=2", "MailProg=/bin/true", "KillWait=10", "MinJobAge=3600",
        # a requeued job may start again after cred_expire s (default 120); the scheduler runs every 2 s (60)
        "AuthInfo=cred_expire=10", "SchedulerParameters=sched_interval=2,bf_interval=2",
        f"StateSaveLocation={state}/ctld", f"SlurmdSpoolDir={state}/d",
        f"SlurmctldPidFile={state}/slurmctld.pid", f"SlurmdPidFile={state}/slurmd.pid",
        f"SlurmctldLogFile={state}/slurmctld.log", f"SlurmdLogFile={state}/slurmd.log",
        "SlurmctldPort=6817", "SlurmdPort=6818",
        f"{node_line} NodeAddr=127.0.0.1 State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def start(state: Path) -> Cluster:
    """Start munged (unless one runs), slurmctld and slurmd; Unavailable says why it cannot be done here."""
    if os.geteuid() != 0:
        raise Unavailable("starting a Slurm cluster needs root")
    missing = [program for program in PROGRAMS if shutil.which(program) is None]
    if missing:
        raise Unavailable(f"Slurm is not installed (no {', '.join(missing)}); .ci/run installs it with "
                          f"`apt-get install --no-install-recommends {PACKAGES}`")
    if CONF.exists() and MARK not in CONF.read_text(errors="replace"):
        raise Unavailable(f"{CONF} exists and is not the tests' own: a real cluster is configured here")
    if port_in_use(6817) or port_in_use(6818):
        raise Unavailable("Slurm's ports 6817/6818 are in use: another cluster runs on this machine")
    state.mkdir(parents=True, exist_ok=True)
    for sub in ("ctld", "d"):
        (state / sub).mkdir(exist_ok=True)
    cluster = Cluster(state)
    start_munge(cluster)
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(configuration(state))
    for daemon in ("slurmctld", "slurmd"):
        result = subprocess.run([daemon], capture_output=True, text=True, timeout=30)
        pid = read_pid(state / f"{daemon}.pid")
        deadline = time.monotonic() + 10
        while (pid is None or not alive(pid, daemon)) and time.monotonic() < deadline:
            time.sleep(0.1)
            pid = read_pid(state / f"{daemon}.pid")
        if pid is None or not alive(pid, daemon):
            stop(cluster)
            raise Unavailable(f"{daemon} did not start: {result.stderr.strip()[-300:]} (log in {state})")
        cluster.pids[daemon] = pid
    try:
        cluster.wait_idle()
    except Unavailable:
        stop(cluster)
        raise
    return cluster


def start_munge(cluster: Cluster) -> None:
    pid_file = Path("/run/munge/munged.pid")
    pid = read_pid(pid_file)
    if pid is not None and alive(pid, "munged"):
        return  # someone else's munged: used, and left running
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    result = subprocess.run(["runuser", "-u", "munge", "--", "munged"], capture_output=True, text=True, timeout=30)
    pid = read_pid(pid_file)
    if result.returncode != 0 or pid is None:
        raise Unavailable(f"munged did not start: {result.stderr.strip()[-300:]}")
    cluster.pids["munged"] = pid


def stop(cluster: Cluster) -> None:
    """Cancel every job, then stop the daemons this process started (SIGTERM, SIGKILL after 3 s: a test
    cluster keeps no state worth a clean shutdown), and remove the config it wrote."""
    with contextlib.suppress(Exception):  # the controller may be the thing that failed
        cluster.cancel_all()
    for program in ("slurmd", "slurmctld", "munged"):
        pid = cluster.pids.get(program)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 3
        while alive(pid, program) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid, program):
            os.kill(pid, signal.SIGKILL)
    if CONF.exists() and MARK in CONF.read_text(errors="replace"):
        CONF.unlink()
