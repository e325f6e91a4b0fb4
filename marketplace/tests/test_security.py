"""Production settings, headers, lockout and rate limits: what an attacker meets."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # PyYAML, which drf-spectacular installs
from django.test import override_settings
from redis import Redis

from .factories import FORM_DATA
from .topology import PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Jq2vN9pL4wR8tY1uI6oP3aS5dF0gH-kZ_cX2vB7nM4qW9eR1tY6uI3oP8aS5dF",
    "ALLOWED_HOSTS": "leads.example.com",
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
}


def manage(*args, env_overrides=None):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "SECURE_PROXY", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(env_overrides or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_reports_nothing_at_warning_level():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def compose_environment(service: str, given: dict[str, str]) -> dict[str, str]:
    """The environment docker-compose.yml gives a service, `${VAR:-default}` and `${VAR:?error}` resolved
    as compose does from `given` (what the operator's shell or .env sets)."""
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {}
    for name, value in spec["services"][service]["environment"].items():

        def resolve(match: re.Match) -> str:
            var, op, word = match.group(1), match.group(2), match.group(3)
            if given.get(var):
                return given[var]
            assert op != ":?", f"compose needs {var} set"
            return word

        env[name] = re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", resolve, str(value))
    return env


def test_compose_is_secure_by_default():
    """Issue 11.17: docker compose is the production topology, so with only the secret it requires set,
    `check --deploy` finds nothing (secure cookies, HSTS, HTTPS redirect behind the proxy)."""
    env = compose_environment("web", {"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]})
    assert env["SECURE_PROXY"] == "1"
    # No database or broker is reached by the check; the embedded database keeps it off the network.
    env["DATABASE_URL"] = PRODUCTION_ENV["DATABASE_URL"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_start_without_secret_or_hosts_fails_loudly(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = manage("check", env_overrides=env)
    assert result.returncode != 0
    assert missing in result.stderr and "DEBUG" in result.stderr


def test_pages_carry_security_headers(client, db):
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_template_has_inline_script_or_event_handlers():
    offenders = []
    for path in list((ROOT / "templates").rglob("*.html")) + list(ROOT.glob("*/templates/**/*.html")):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offenders.append(f"{path}: {tag}")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{path}: inline event handler")
    assert not offenders


def test_every_state_changing_form_has_a_csrf_token():
    for path in list((ROOT / "templates").rglob("*.html")) + list(ROOT.glob("*/templates/**/*.html")):
        text = path.read_text()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", text, flags=re.S | re.I):
            if re.search(r'method=["\']?post', form, re.I):
                assert "csrf_token" in form, f"{path}: POST form without {{% csrf_token %}}"


@pytest.mark.parametrize("url", ["/portal/login/", "/admin/login/"])
def test_five_failed_logins_lock_the_account(client, owner, staff, url):
    username = "owner" if "portal" in url else "staff"
    password = "pass-12345" if "portal" in url else "staff-pass-123"
    for _ in range(5):
        client.post(url, {"username": username, "password": "wrong-password"})
    response = client.post(url, {"username": username, "password": password})
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_a_correct_login_resets_the_failure_count(client, owner):
    """Four failures, a success, then four more: eight in all, so only a reset count lets the last sign-in
    through (without the reset the fifth failure locks the account). The old version stopped after the
    first success, which passes whether or not the count resets."""

    def fail_four_times_then_sign_in() -> int:
        for _ in range(4):
            assert (
                client.post("/portal/login/", {"username": "owner", "password": "wrong"}).status_code == 200
            )
        response = client.post("/portal/login/", {"username": "owner", "password": "pass-12345"})
        client.logout()
        return response.status_code

    assert fail_four_times_then_sign_in() == 302
    assert fail_four_times_then_sign_in() == 302


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def counters(request, settings):
    """The rate-limit counters in each cache the product runs on: per process, and shared in Redis. The
    Redis keys get a prefix of their own and are removed after."""
    if request.param == "redis":
        yield request.getfixturevalue("redis_cache")
    else:
        yield None


@override_settings(LEAD_FORM_RATE_LIMIT=3, LEAD_FORM_RATE_WINDOW=600)
def test_the_public_form_is_rate_limited_per_ip_with_a_readable_message(client, db, counters):
    statuses = [client.post("/", {**FORM_DATA, "email": f"c{i}@example.com"}).status_code for i in range(3)]
    assert statuses == [303, 303, 303]
    response = client.post("/", FORM_DATA)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert b"Please wait a few minutes" in response.content
    other_ip = client.post("/", {**FORM_DATA, "email": "x@example.com"}, REMOTE_ADDR="198.51.100.7")
    assert other_ip.status_code == 303
    if counters is not None:  # Redis forgets a window's counter soon after the window ends
        client_ = Redis.from_url(os.environ["REDIS_URL"])
        keys = list(client_.scan_iter(f"{counters.key_prefix}:*rl:lead_form:*"))
        assert len(keys) == 2 and all(0 < client_.ttl(key) <= 605 for key in keys)


@pytest.mark.redis
def test_the_shared_cache_is_djangos_own_redis_backend():
    """Issue 13.5: with Redis, the cache was marketplace.cache.RedisCache, a subclass of Django's private
    RedisCacheClient (one client per process, a pipelined count), so a Django upgrade that changed that
    class would break the rate limit of every form and API request. It is Django's own RedisCache now, and
    the rate limit counts through its public incr() and add()."""
    show = (
        "from django.core.cache import caches; t = type(caches['default']); print(t.__module__, t.__name__)"
    )
    env = {"DEBUG": "1", "REDIS_URL": os.environ["REDIS_URL"], "CACHE_URL": ""}
    result = manage("shell", "--no-imports", "-c", show, env_overrides=env)
    assert result.stdout.split() == ["django.core.cache.backends.redis", "RedisCache"], result.stderr


def test_healthz_reports_database_and_broker(client, db, monkeypatch):
    """The broker's answer is its own: ok while a Redis answers, an error and a 503 once it is stopped (the
    old version only checked that the word "broker" was in the body). The Redis is the topology's private
    one, so stopping it disturbs nothing else on the machine."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is required") if os.environ.get("CI") else pytest.skip("no redis-server")
    from config.celery import app as celery_app

    redis = PrivateRedis()
    redis.start()
    try:
        # As in production: tasks go to a broker, the one this test owns (the variable outranks settings).
        monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
        monkeypatch.setenv("CELERY_BROKER_WRITE_URL", redis.url)
        up = client.get("/healthz")
        assert up.status_code == 200
        assert up.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    finally:
        redis.stop()
    down = client.get("/healthz")
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["broker"].startswith("error: ")


def test_an_empty_database_url_means_the_embedded_default():
    """`DATABASE_URL=` (set but empty, as a .env template leaves it) falls back to SQLite, as if unset."""
    result = manage("check", env_overrides={"DEBUG": "1", "DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
