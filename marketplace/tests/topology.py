"""The production topology as real processes, for fault and full-stack tests: a private Redis that a test may
stop and start, gunicorn, Celery worker(s) and beat, all on the pytest-django test database."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            if predicate():
                return True
        time.sleep(interval)
    return False


class PrivateRedis:
    """A Redis of our own on a free port, so stopping it cannot disturb anything else on the machine."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(self._ping, 10), "private redis did not start"

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Stack:
    """gunicorn + Celery worker + beat against `database_url` and `redis`. Logs go to files under log_dir."""

    def __init__(
        self, *, database_url: str, redis: PrivateRedis, log_dir: Path, extra_env: dict | None = None
    ):
        self.port = free_port()
        self.redis = redis
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "CACHE_URL": redis.url.replace("redis://", "rediscache://"),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_TASK_EAGER_PROPAGATES": "0",
            "DEBUG": "0",
            "SECRET_KEY": "stack-test-secret-key-not-for-production-use-0123456789",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_PROXY": "0",
            "WHITENOISE_USE_FINDERS": "1",
            "SITE_URL": f"http://127.0.0.1:{self.port}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def start_web(self, *, workers: int = 2, threads: int = 4) -> None:
        self._spawn(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
            ],
        )
        assert wait_until(
            lambda: urllib.request.urlopen(self.url + "/healthz", timeout=2).status == 200, 30
        ), self.log("web")

    def start_worker(
        self, *, concurrency: int = 2, name: str = "worker", queues: str = "celery,webhooks,mail"
    ) -> subprocess.Popen:
        """A worker on `queues`: by default all of them in one process, for tests; production runs the
        sales worker and the outbound worker apart (Procfile)."""
        proc = self._spawn(
            name,
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--queues",
                queues,
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        assert wait_until(lambda: "ready." in self.log(name), 30), self.log(name)
        return proc

    def start_beat(self) -> None:
        self._spawn(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.log_dir / "beat-schedule"),
            ],
        )

    def children(self, name: str = "worker") -> list[int]:
        """The pool processes of a prefork worker (the ones that run tasks)."""
        parent = self.procs[name].pid
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    pids.append(int(stat.parent.name))
        return pids

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()


def database_url_for_tests() -> str:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
