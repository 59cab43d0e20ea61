"""Run `shopkeeper serve` as a real process on a free loopback port (and, as in the Procfile, a `shopkeeper worker`)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int
    worker_pid: int | None = None


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 15) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_lease(database: Path, worker: subprocess.Popen[bytes], log: IO[bytes], deadline: float) -> None:
    """Wait until the worker holds the scheduler lease: it is then feeding turns and sending."""
    while True:
        if worker.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"worker exited: {log.read().decode(errors='replace')[-4000:]}")
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute("SELECT holder FROM scheduler_lease").fetchone()
        if row is not None and f":{worker.pid}:" in row[0]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not take the scheduler lease")
        time.sleep(0.1)  # polling a real process for readiness, not faking time


@contextmanager
def running_server(
    data_dir: Path, *, extra_env: dict[str, str] | None = None, ready_timeout: float = 60.0, with_worker: bool = False
) -> Iterator[Server]:
    """Start the server on the data dir; yield its URL and pid; stop it (SIGTERM) afterwards.

    ``with_worker`` runs the Procfile's layout: ``serve --no-scheduler`` only accepts,
    and a ``shopkeeper worker`` process (started once the web process has migrated the
    database and loaded the demo store) runs the turns, the scheduler and the sending.
    """
    port = free_port()
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir), "SHOPKEEPER_LOG_LEVEL": "WARNING", **(extra_env or {})}
    env.pop("ANTHROPIC_API_KEY", None)
    # the log goes to a file, never a pipe nobody drains: a chatty server would block on a full pipe
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    command = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--no-scheduler"] if with_worker else command, env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    worker: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-4000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become ready")
            time.sleep(0.1)  # polling a real process for readiness, not faking time
        if with_worker:
            worker = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=log
            )
            _wait_for_lease(data_dir / "shopkeeper.db", worker, log, time.monotonic() + ready_timeout)
        yield Server(base, process.pid, worker.pid if worker is not None else None)
    finally:
        for running in (worker, process):
            if running is not None:
                stop_process(running)
        log.close()
