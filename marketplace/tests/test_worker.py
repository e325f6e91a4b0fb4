"""A lead from the public form to a Delivery through a real Celery worker on Redis and PostgreSQL."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.celery import app as celery_app
from leads.models import Lead
from marketplace.models import Delivery

from .factories import FORM_DATA, make_subscription
from .topology import database_url_for_tests

# A real worker: slow, and in the topology group, so that the one test consuming from REDIS_URL's queues
# never runs beside another that uses them (one xdist worker runs the group in turn).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("topology"),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker():
    """A real worker process on the test database, consuming from REDIS_URL."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    celery_app.control.purge()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def broker_mode(settings):
    """Enqueue to Redis for real in this process (the suite runs eager by default)."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_form_to_delivery_through_a_real_worker(client, buying_lender, worker, broker_mode):
    make_subscription(buying_lender, price="45.00")

    response = client.post("/", FORM_DATA)
    assert response.status_code in (302, 303)
    lead = Lead.objects.get()
    assert lead.status == "received"  # saved before any task ran

    assert wait_for(lambda: Delivery.objects.filter(lead=lead).exists()), (
        f"no delivery within 30 s; lead is {Lead.objects.get(pk=lead.pk).status}"
    )
    delivery = Delivery.objects.get(lead=lead)
    assert delivery.lender == buying_lender and delivery.price == 45
    assert Lead.objects.get(pk=lead.pk).status == "sold"
    # The notification task ran on the worker too.
    assert wait_for(lambda: Delivery.objects.get(pk=delivery.pk).notified_at is not None)

    page = client.get(response["Location"])
    assert b"may qualify for up to" in page.content
