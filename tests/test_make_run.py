"""`make run PORT=…` starts the demo console on the port asked for."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 120  # a budget for a loaded 2-core machine, not a speed claim


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_make_run_serves_the_console_on_the_port_given(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(["make", "--no-print-directory", "run", f"PORT={port}", f"DATA_DIR={tmp_path}"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        page = b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/", timeout=2) as r:
                    page = r.read()
                break
            except OSError:
                time.sleep(0.5)
        assert b"<title>" in page and "动线".encode() in page, (proc.stdout.read() if proc.poll() is not None else b"")
        assert (tmp_path / "demo.db").exists()  # the demo company went where DATA_DIR said
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
