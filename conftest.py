"""Test set-up shared by every app: environment, service markers and named personas."""

import os

# Before Django reads settings: test-only secrets, eager Celery, no HTTPS-only cookies, a fast hasher.
os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ["SECURE_PROXY"] = "0"
os.environ["FAST_PASSWORD_HASHER"] = "1"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
os.environ["CELERY_TASK_EAGER_PROPAGATES"] = "1"
os.environ["CACHE_URL"] = "locmemcache://"  # rate-limit counters per test process, cleared between tests
os.environ.setdefault("LEAD_FORM_RATE_LIMIT", "1000")
# Set here rather than in pyproject so that the variables above are in place before Django starts.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402
import pytest  # noqa: E402

django.setup()  # pytest-django sees a ready Django in its pytest_configure and takes over from here

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(what: str, reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"needs {what}: {reason}")


def redis_available() -> tuple[bool, str]:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return False, "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return False, f"Redis at REDIS_URL is unreachable ({type(exc).__name__})"
    return True, ""


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    from core import staffconfig

    cache.clear()
    staffconfig.clear()


@pytest.fixture(autouse=True)
def _sms_outbox():
    """The console SMS backend's outbox starts empty, as Django empties mail.outbox for each test."""
    from integrations.channels import sms

    sms.outbox.clear()


@pytest.fixture(autouse=True)
def _service_markers(request):
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            _need("PostgreSQL", "DATABASE_URL is not set to a PostgreSQL database")
    if request.node.get_closest_marker("redis"):
        ok, reason = redis_available()
        if not ok:
            _need("Redis", reason)


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by marker (`-m "not slow"`)
def pytest_collection_modifyitems(config, items):
    # A browser test is slow by nature (chromium and a live server): marked here, so that no new one is
    # left in `make test` by a forgotten marker.
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
    # The browser tests share one live server and chromium; run them last so a slow start blocks nothing.
    items.sort(key=lambda item: bool(item.get_closest_marker("browser")))


# --- personas -----------------------------------------------------------------------------------------


@pytest.fixture
def buying_lender(db):
    """A funded lender licensed in TX and CA with an owner (`owner`) and an officer."""
    from marketplace.tests.factories import LenderFactory

    return LenderFactory(name="Lone Star Lending", states=["TX", "CA"], balance="1000.00")


@pytest.fixture
def rival_lender(db):
    from marketplace.tests.factories import LenderFactory

    return LenderFactory(name="Rival Mortgage", states=["TX", "CA"], balance="1000.00")


@pytest.fixture
def owner(buying_lender):
    from marketplace.tests.factories import MemberFactory

    return MemberFactory(lender=buying_lender, role="owner", username="owner").user


@pytest.fixture
def officer(buying_lender):
    from marketplace.tests.factories import MemberFactory

    return MemberFactory(lender=buying_lender, role="officer", username="officer").user


@pytest.fixture
def rival_owner(rival_lender):
    from marketplace.tests.factories import MemberFactory

    return MemberFactory(lender=rival_lender, role="owner", username="rival").user


@pytest.fixture
def staff(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("staff", "staff@example.com", "staff-pass-123")


@pytest.fixture
def redis_cache(settings, request):
    """Django's cache on the real Redis at REDIS_URL, as production runs it, under a key prefix of this test's
    own (no glob characters), whose keys are removed after."""
    from django.core.cache import cache
    from redis import Redis

    prefix = f"test-{os.getpid()}-{request.node.originalname}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("REDIS_URL", ""),
            "KEY_PREFIX": prefix,
        }
    }
    yield cache
    client = Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def daytime(monkeypatch):
    """Quiet hours (integrations.outreach.quiet) judged by the real clock make a test of texts or call tasks
    pass by day and fail by night (US time): this opens the hours all day. Tests of quiet hours themselves
    pass a frozen `now` and do not use it."""
    from datetime import time

    from integrations.outreach import quiet

    monkeypatch.setattr(quiet, "ALLOWED_FROM", time.min)
    monkeypatch.setattr(quiet, "ALLOWED_UNTIL", time.max)
