"""What every benchmark shares: the machine, results files, server processes, databases.

Each benchmark is a script (`python -m bench.NAME`) that prints its figures and
the exact command that produced them, and writes `bench/results/NAME.json`.
The bot always runs as its own `dongxian serve` process; load generators and
fake platforms run in the benchmark's process. Everything stays on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench"


# -- the machine and the command ---------------------------------------------------------
def machine() -> dict[str, Any]:
    """nproc, memory, CPU model, load, versions: what a reader needs to compare figures."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import sqlite3
    return {
        "nproc": os.cpu_count(), "memory_mib": mem_kb // 1024, "cpu_model": cpu,
        "loadavg": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "kernel": platform.release(),
    }


def command() -> str:
    """The command line that started this process, as typed (relative to the repository)."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    exe = Path(argv[0])
    try:
        argv[0] = str(exe.relative_to(ROOT)) if exe.is_absolute() else argv[0]
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in argv)


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """bench/results/NAME.json: the figures with the machine, the command and the time."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "command": command(), "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), **figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def banner(title: str) -> None:
    m = machine()
    print(f"== {title}", flush=True)
    print(f"   command: {command()}", flush=True)
    print(f"   machine: {m['nproc']} cores, {m['memory_mib']} MiB, {m['cpu_model']}, load {m['loadavg']}", flush=True)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def rounded(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- process figures ----------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    """Resident memory of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class RssSampler:
    """Peak RSS of a process over a phase, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return
            await asyncio.sleep(0.05)

    def __enter__(self) -> "RssSampler":
        self.peak = rss_mib(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()


# -- databases ----------------------------------------------------------------------------
@dataclass
class BenchDatabase:
    """A fresh database for one benchmark run: a SQLite file or a new PostgreSQL database."""

    url: str
    kind: str
    _pg_name: str = ""

    @classmethod
    async def create(cls, kind: str, name: str) -> "BenchDatabase":
        from store.db import Database
        from store.migrate import upgrade

        if kind == "sqlite":
            WORK.mkdir(parents=True, exist_ok=True)
            path = WORK / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            bench_db = cls(f"sqlite+aiosqlite:///{path}", "sqlite")
        else:
            base = pg_server_url()
            if not base:
                raise RuntimeError("set DONGXIAN_TEST_PG to a postgresql+asyncpg:// URL of a server to use PostgreSQL")
            import asyncpg
            from sqlalchemy.engine import make_url
            u = make_url(base)
            dbname = f"dx_bench_{name}_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                                         database=u.database or "postgres")
            try:
                await conn.execute(f'CREATE DATABASE "{dbname}"')
            finally:
                await conn.close()
            bench_db = cls(u.set(database=dbname).render_as_string(hide_password=False), "postgres", dbname)
        db = Database(bench_db.url)
        try:
            await upgrade(db)
        finally:
            await db.close()
        return bench_db

    async def drop(self) -> None:
        if self.kind != "postgres":
            return
        import asyncpg
        from sqlalchemy.engine import make_url
        u = make_url(pg_server_url())
        conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                                     database=u.database or "postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
        finally:
            await conn.close()


def pg_server_url() -> str:
    return os.environ.get("DONGXIAN_TEST_PG", "")


# -- configuration and the server process ----------------------------------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def write_config(path: Path, *, db_url: str, port: int, tenant: dict[str, Any], data_dir: Path) -> Path:
    """A config.toml for `dongxian serve` with one tenant (a platform section as a nested dict)."""
    lines = ["[server]", 'host = "127.0.0.1"', f"port = {port}", f"data_dir = {_toml(str(data_dir))}", "",
             "[database]", f"url = {_toml(db_url)}", "", "[[tenants]]"]
    section: tuple[str, dict[str, Any]] | None = None
    for k, v in tenant.items():
        if isinstance(v, dict):
            section = (k, v)
        else:
            lines.append(f"{k} = {_toml(v)}")
    if section is not None:
        lines += ["", f"[tenants.{section[0]}]"] + [f"{k} = {_toml(v)}" for k, v in section[1].items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@dataclass
class ServerProcess:
    """One `dongxian serve` process; its output goes to a log file next to its config."""

    config: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    module: str = ""  # run `python -m MODULE --config …` instead of `dongxian serve`
    args: tuple[str, ...] = ()  # more `serve` arguments (`--role worker --port N`)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.log_path = self.config.with_suffix(".log")
        log = self.log_path.open("wb")
        exe = ROOT / ".venv" / "bin" / "dongxian"
        argv = [str(exe) if exe.exists() else "dongxian", "serve", "--config", str(self.config), *self.args]
        if self.module:
            argv = [sys.executable, "-m", self.module, "--config", str(self.config)]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until /healthz answers 200."""
        import aiohttp
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - started < timeout:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    async with http.get(self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return time.monotonic() - started
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s; see {self.log_path}")

    async def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Sum of a Prometheus sample (all label sets matching `labels`)."""
        import aiohttp
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/metrics") as r:
                text = await r.text()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head.split("{", 1)[0] != name:
                continue
            if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
                continue
            total += float(value)
        return total

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def local_now(tz: str = "Asia/Shanghai") -> datetime:
    from zoneinfo import ZoneInfo
    return datetime.now(ZoneInfo(tz))


def due_now_tenant(base: dict[str, Any]) -> dict[str, Any]:
    """Tenant settings that make the 09:30 prompt due at this very minute (and nothing else due).

    The ticker's first beat runs when the server starts, so the prompt's tick is the
    server's start; today is declared a working day, the pulse is set twelve hours away.
    """
    now = local_now(base.get("timezone", "Asia/Shanghai"))
    pulse = (now.hour + 12) % 24
    return {**base, "morning_prompt_at": f"{now.hour:02d}:{now.minute:02d}", "pulse_at": f"{pulse:02d}:00",
            "extra_workdays": [now.date().isoformat()], "catch_up_grace_minutes": 120}


def log(msg: str) -> None:
    print(f"   {msg}", flush=True)


# -- profiles -----------------------------------------------------------------------------
def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample a running process with py-spy (if installed) into collapsed stacks at `out`."""
    exe = ROOT / ".venv" / "bin" / "py-spy"
    if not exe.exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                             "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(raw: Path, top: int = 25) -> list[tuple[str, float]]:
    """(function, share of samples in which it is on the stack), highest first, from py-spy's raw output."""
    if not raw.exists():
        return []
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        total += count
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (", 1)[0] + " (" + frame.split(" (", 1)[1].split(":")[0].rsplit("/", 1)[-1] + ")" \
                if " (" in frame else frame
            if name not in seen:
                seen.add(name)
                inclusive[name] = inclusive.get(name, 0) + count
    if not total:
        return []
    return [(k, round(v / total, 3)) for k, v in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]]
