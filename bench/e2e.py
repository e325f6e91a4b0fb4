"""End-to-end benchmark: the full stack (gunicorn, N Celery workers, beat, PostgreSQL, Redis) under a load
generator posting leads at a fixed rate. Prints a table and writes bench-e2e.json.

    make bench     # both benchmarks; or: .venv/bin/python bench/e2e.py [--workers 2] [--rates 20,50,100]

Measures intake latency (request -> 303), submit-to-sold latency (request start -> committed Delivery),
sustained throughput, and checks nothing was lost or duplicated. Also measures the machine's own ceiling:
a trivial Celery task's round trip, and a one-row INSERT with pgbench; each figure is reported against it.
"""

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("BENCH_DB", "leadmarket_bench_e2e")
PG = "postgres://postgres@127.0.0.1:5432"
os.environ["DATABASE_URL"] = f"{PG}/{BENCH_DB}"
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["WEBHOOK_ALLOW_LOOPBACK"] = "1"  # the bench's receiver listens on 127.0.0.1
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 1)


def setup_database(webhook_url: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from decimal import Decimal

    from marketplace.tests.factories import LenderFactory, MemberFactory, make_subscription

    states = ["TX", "CA", "FL", "NY"]
    for i in range(6):
        lender = LenderFactory(name=f"Bench lender {i}", states=states, balance="10000000")
        MemberFactory(lender=lender)  # an owner, e-mailed about each new lead (console backend here)
        make_subscription(lender, states=states, price=str(Decimal(40 + i)), name="shared")
        if i < 2:
            make_subscription(
                lender, states=states, exclusive=True, price=str(Decimal(90 + i)), name="exclusive"
            )
        if i == 5:  # the best shared bid, so every lead sold makes one webhook delivery
            from integrations.services import webhook_endpoint_create

            webhook_endpoint_create(lender=lender, url=webhook_url, events=["delivery.created"])


def _letters(n: int) -> str:
    """A unique letters-only surname for lead n (names are validated as letters)."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(97 + r) + out
        if n == 0:
            return "Bench" + out


def bench_zips(states: tuple[str, ...] = ("TX", "CA", "FL", "NY"), per_state: int = 500) -> list[str]:
    """Real, active ZIP codes spread over the lenders' states, so ZIP lookups and county limits vary as
    they do in real traffic (a fixed sample, the same every run)."""
    import random

    import zipcodes

    rng = random.Random(7)
    out: list[str] = []
    for state in states:
        found = [z["zip_code"] for z in zipcodes.filter_by(state=state, active=True) if z.get("county")]
        out += rng.sample(found, min(per_state, len(found)))
    rng.shuffle(out)
    return out


ZIPS: list[str] = []


class Load:
    """Consumers' browsers: a GET for the CSRF cookie and token, then POSTs on kept-alive connections.

    Requests are built before a phase starts and written from one asyncio thread, so the load generator
    takes as little as it can of the machine it measures (it shares the two cores with the stack)."""

    def __init__(self, base: str, connections: int = 64):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port, self.base, self.connections = parts.hostname, parts.port, base, connections
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", "/")
        response = conn.getresponse()
        page = response.read().decode()
        conn.close()
        self.cookie = "; ".join(
            c.split(";", 1)[0] for k, c in response.getheaders() if k.lower() == "set-cookie"
        )
        self.token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        from marketplace.tests.factories import FORM_DATA  # after django.setup()

        self.form = FORM_DATA

    def request(self, n: int) -> bytes:
        """Lead n's form POST, as bytes on the wire."""
        data = {
            **self.form,
            "zip_code": ZIPS[n % len(ZIPS)],
            "annual_income": "130000",
            "monthly_debts": "400",
            "first_name": "Bench",
            "last_name": _letters(n),
            "email": f"bench{n}@example.com",
            "phone": f"512{200 + n // 10_000 % 800:03d}{n % 10_000:04d}",
            "csrfmiddlewaretoken": self.token,
        }
        body = urllib.parse.urlencode(data).encode()
        head = (
            f"POST / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Cookie: {self.cookie}\r\nReferer: {self.base}/\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def run(self, rate: float, requests: list[bytes]) -> tuple[list, list]:
        """Send request i at t0 + i / rate (open loop: a slow answer does not delay the next request, it waits
        for a free connection); returns [(public_id, t_request, intake_ms)] and the errors."""
        return asyncio.run(self._run(rate, requests))

    async def _run(self, rate: float, requests: list[bytes]) -> tuple[list, list]:
        results, errors = [], []
        idle: asyncio.LifoQueue = asyncio.LifoQueue()  # the most recently used first: it is still open
        for _ in range(self.connections):
            idle.put_nowait(None)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.5

        async def post(conn, request: bytes):
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            return conn, head

        async def one(i: int, request: bytes):
            await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
            conn = await idle.get()  # one request at a time per kept-alive connection
            start = time.time()
            try:
                try:
                    conn, head = await post(conn, request)
                except (OSError, asyncio.IncompleteReadError):  # the server closed an idle connection
                    conn, head = await post(None, request)
                status = int(head[9:12])
                if status != 303:
                    raise RuntimeError(f"intake answered {status}")
                location = re.search(rb"(?i)\r\nlocation: *([^\r]+)", head).group(1).decode()
                results.append((location.rstrip("/").rsplit("/", 1)[-1], start, (time.time() - start) * 1000))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(repr(exc))
                conn = None
            finally:
                idle.put_nowait(conn)

        await asyncio.gather(*(one(i, request) for i, request in enumerate(requests)))
        while not idle.empty():
            conn = idle.get_nowait()
            if conn is not None:
                conn[1].close()
        return results, errors


class Endpoint:
    """The lender's webhook endpoint: records when each POST arrived and answers 200 at once. asyncio on a
    thread of its own, so that, sharing the machine it measures, it takes as little of it as it can (a real
    endpoint runs elsewhere). Keep-alive, as the outbound worker's pooled connection expects."""

    def __init__(self):
        self.received_at: list[tuple[float, bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                self.received_at.append((time.time(), body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the sender closed its kept-alive connection
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


ROLES = (("gunicorn", "web"), ("celery", "celery"), ("postgres", "postgres"), ("redis-server", "redis"))


def cpu_by_role() -> dict[str, float]:
    """CPU seconds used so far by each part of the machine: web, Celery, PostgreSQL, Redis, and this process
    (the load generator and the lender's webhook receiver). Read from /proc, so it sees every process."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == os.getpid():
            role = "load generator"
        else:
            role = next((r for needle, r in ROLES if needle in cmdline), None)
        if role:
            # Own time plus the reaped children's: a PostgreSQL backend or pool process that exits during
            # the run still counts, through its parent (postmaster, Celery, gunicorn) in the same role.
            own_and_children = sum(int(f) for f in fields[11:15])
            totals[role] = totals.get(role, 0.0) + own_and_children / tick
    return totals


def run_rate(load: Load, rate: float, requests: list[bytes]) -> dict:
    """Post `requests` at `rate` a second; returns per-lead (public_id, t_request, intake_ms)."""
    results, errors = load.run(rate, requests)
    return {
        "rate": rate,
        "seconds": len(requests) / rate,
        "sent": len(requests),
        "results": results,
        "errors": errors,
        "send_end": time.time(),
    }


def collect(phase: dict, wait_seconds: float, hooks: list[tuple[float, bytes]]) -> dict:
    from django.db.models import Count, Min

    from leads.models import Lead
    from marketplace.models import Delivery

    ids = [r[0] for r in phase["results"]]
    deadline = time.time() + wait_seconds
    while time.time() < deadline:
        done = Lead.objects.filter(public_id__in=ids, status__in=["sold", "unsold", "not_qualified"]).count()
        if done == len(ids):
            break
        time.sleep(0.5)
    sold_at = {
        str(pid): t
        for pid, t in Delivery.objects.filter(lead__public_id__in=ids)
        .values_list("lead__public_id")
        .annotate(t=Min("created_at"))
    }
    started = {r[0]: r[1] for r in phase["results"]}
    to_sold = [(sold_at[pid].timestamp() - started[pid]) * 1000 for pid in ids if pid in sold_at]
    # The first signed delivery.created webhook the lender's receiver got for each lead.
    hooked_at: dict[str, float] = {}
    wait_hooks = time.time() + 30
    while time.time() < wait_hooks:
        for at, body in list(hooks):
            pid = json.loads(body)["data"]["lead_id"]
            if pid in started:
                hooked_at[pid] = min(at, hooked_at.get(pid, at))
        if len(hooked_at) >= len(sold_at):
            break
        time.sleep(0.5)
    to_hook = [(hooked_at[pid] - started[pid]) * 1000 for pid in hooked_at]
    dup_exclusive = (
        Delivery.objects.filter(lead__public_id__in=ids, exclusive=True)
        .values("lead")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    dup_pairs = (
        Delivery.objects.filter(lead__public_id__in=ids)
        .values("lead", "lender")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    last_sold = max(sold_at.values()).timestamp() if sold_at else phase["send_end"]
    first_start = min(started.values()) if started else 0
    return {
        "rate_target": phase["rate"],
        "sent": phase["sent"],
        "accepted": len(ids),
        "intake_errors": len(phase["errors"]),
        "sold": len(sold_at),
        "lost": len(ids) - Lead.objects.filter(public_id__in=ids).count(),
        "not_finished": len(ids)
        - Lead.objects.filter(public_id__in=ids, status__in=["sold", "unsold", "not_qualified"]).count(),
        "duplicate_exclusive": dup_exclusive,
        "duplicate_deliveries": dup_pairs,
        "intake_ms": {p: pct([r[2] for r in phase["results"]], p) for p in (50, 95, 99)},
        "submit_to_sold_ms": {p: pct(to_sold, p) for p in (50, 95, 99)},
        "webhooks_received": len(hooked_at),
        "submit_to_webhook_ms": {p: pct(to_hook, p) for p in (50, 95, 99)},
        "throughput_leads_per_s": round(len(sold_at) / max(0.001, last_sold - first_start), 1),
    }


def python_loop_seconds() -> float:
    """The machine's plain CPU speed, for comparing runs on a shared machine whose speed varies: the best of
    three 10-million-step Python loops, in CPU seconds: lower is faster."""
    best = float("inf")
    for _ in range(3):
        start, total = time.process_time(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return round(best, 2)


def celery_ceiling(n: int = 300) -> float:
    from marketplace.tasks import ping

    times = []
    for _ in range(n):
        start = time.perf_counter()
        ping.apply_async().get(timeout=10)
        times.append(time.perf_counter() - start)
    return round(1 / statistics.mean(times), 1)


def pgbench_ceiling(seconds: int = 10) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("INSERT INTO bench_ceiling (payload) VALUES ('x');\n")
        script = f.name
    subprocess.run(
        [
            "psql",
            f"{PG}/{BENCH_DB}",
            "-qc",
            "CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial primary key, payload text)",
        ],
        check=True,
    )
    out = subprocess.run(
        ["pgbench", "-n", "-c", "2", "-j", "2", "-T", str(seconds), "-f", script, f"{PG}/{BENCH_DB}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return round(float(re.search(r"tps = ([\d.]+)", out).group(1)), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--workers", type=int, default=2, help="Celery worker processes (2 did best on 2 cores)"
    )
    parser.add_argument("--web", default="2x4", help="gunicorn workers x threads")
    parser.add_argument(
        "--rates",
        default="10,20,50,100,200,250",
        help="leads per second to try, in order (the last above the target, to find the ceiling)",
    )
    parser.add_argument("--warmup", type=float, default=5, help="seconds at 10 leads/s first, not reported")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()

    from marketplace.tests.topology import PrivateRedis, Stack

    ZIPS.extend(bench_zips())
    receiver = Endpoint()
    setup_database(receiver.url)

    redis = PrivateRedis()
    redis.start()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    stack = Stack(
        database_url=os.environ["DATABASE_URL"],
        redis=redis,
        log_dir=log_dir,
        extra_env={
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "LEAD_FORM_RATE_LIMIT": "1000000",
            "CELERY_RESULT_BACKEND": redis.url.replace("/0", "/1"),
            "WEBHOOK_ALLOW_LOOPBACK": "1",
        },
    )
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "workers": args.workers,
        "phases": [],
    }
    try:
        web_workers, web_threads = (int(x) for x in args.web.split("x"))
        stack.start_web(workers=web_workers, threads=web_threads)
        # As in production (Procfile): sales on their worker, webhooks and e-mail on the outbound one.
        stack.start_worker(concurrency=args.workers, queues="celery")
        stack.start_worker(concurrency=1, name="outbound", queues="webhooks,mail")
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
        from config.celery import app

        app.conf.task_always_eager = False
        app.conf.broker_url = redis.url
        app.conf.result_backend = redis.url.replace("/0", "/1")
        report["python_loop_s"] = python_loop_seconds()
        report["celery_round_trips_per_s"] = celery_ceiling()
        report["pgbench_insert_tps"] = pgbench_ceiling()

        load = Load(stack.url)
        n = 0
        if args.warmup:  # first requests compile templates and open connections in every process
            warm = run_rate(load, 10, [load.request(n + i) for i in range(int(10 * args.warmup))])
            n += warm["sent"]
            collect(warm, wait_seconds=30, hooks=receiver.received_at)
        for rate in [float(r) for r in args.rates.split(",")]:
            requests = [load.request(n + i) for i in range(int(rate * args.seconds))]  # a browser's work
            cpu_before = cpu_by_role()
            phase = run_rate(load, rate, requests)
            n += phase["sent"]
            result = collect(phase, wait_seconds=60, hooks=receiver.received_at)
            cpu_after = cpu_by_role()
            # CPU milliseconds per lead by role, from the start of sending until every lead was done.
            result["cpu_ms_per_lead"] = {
                role: round(
                    (cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / max(1, result["accepted"]), 2
                )
                for role in cpu_after
            }
            report["phases"].append(result)
            print(json.dumps(result), phase["errors"][:2])
    finally:
        stack.stop()
        redis.stop()
        receiver.close()

    sustained = [
        p
        for p in report["phases"]
        if p["lost"] == 0
        and p["not_finished"] == 0
        and not p["intake_errors"]
        and p["duplicate_exclusive"] == 0
        and p["duplicate_deliveries"] == 0
    ]
    report["sustained_leads_per_s"] = max((p["throughput_leads_per_s"] for p in sustained), default=0)
    print(
        f"\nEnd to end ({report['machine']}; {args.workers} Celery processes + 1 outbound, "
        f"gunicorn {args.web})"
    )
    print(
        f"{'target/s':>9} {'sold':>6} {'lost':>5} {'dup':>4} {'intake p50/95/99 ms':>22} "
        f"{'submit->sold p50/95/99 ms':>28} {'submit->webhook p50/95/99 ms':>30} {'achieved/s':>11} "
        f"{'CPU ms/lead':>12}"
    )
    for p in report["phases"]:
        i, s, w = p["intake_ms"], p["submit_to_sold_ms"], p["submit_to_webhook_ms"]
        print(
            f"{p['rate_target']:>9} {p['sold']:>6} {p['lost']:>5} "
            f"{p['duplicate_exclusive'] + p['duplicate_deliveries']:>4} "
            f"{i[50]:>8}/{i[95]}/{i[99]:<10} {s[50]:>10}/{s[95]}/{s[99]:<14} {w[50]:>10}/{w[95]}/{w[99]:<16} "
            f"{p['throughput_leads_per_s']:>11} {sum(p['cpu_ms_per_lead'].values()):>12.1f}"
        )
    c, g, t = (
        report["celery_round_trips_per_s"],
        report["pgbench_insert_tps"],
        report["sustained_leads_per_s"],
    )
    print(
        f"Ceiling: Celery round trips {c}/s, pgbench one-row INSERT {g} tps, "
        f"10-million-step Python loop {report['python_loop_s']} s."
    )
    print(f"Sustained {t} leads/s = {round(t / c, 3)} of the Celery ceiling, {round(t / g, 4)} of pgbench's.")
    (ROOT / "bench-e2e.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
