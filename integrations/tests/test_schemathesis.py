"""schemathesis fuzzes the intake and lender endpoints from the served OpenAPI schema, with valid keys.

Checks: no 5xx (not_a_server_error) and every response matches what the schema documents for its status
code and media type (response_schema_conformance), for data that fits the schema and for data that does
not. Bounded examples per operation keep the run well under two minutes.

Operations are driven with hypothesis directly (schemathesis' Python API: operation.as_strategy()) rather
than schemathesis' pytest plugin, whose subtests do not run under this pytest version.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from integrations.models import ApiKey
from integrations.services import api_key_create

CHECKS = [not_a_server_error, response_schema_conformance]
MAX_EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}


@pytest.fixture
def wsgi_app():
    """Django's WSGI app inside the test's transaction. Like django.test.Client, keep the connection open:
    Django closes "old" connections as a request starts and ends, which would drop the test transaction."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def keys(partner, buying_lender, delivery, settings):
    """A partner's write key and a lender's write key with a delivery to work on; limits out of the way."""
    settings.API_RATE_LIMITS = {"partner": "100000/min", "lender": "100000/min"}
    return {
        "partner": api_key_create(source=partner, name="fuzz", scope=ApiKey.Scope.WRITE).key,
        "lender": api_key_create(lender=buying_lender, name="fuzz", scope=ApiKey.Scope.WRITE).key,
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_conforms_to_its_schema(keys, mode, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/api/v1/leads/", "/api/v1/deliveries/", "/api/v1/deliveries/{delivery_id}/status/"} <= paths

    for operation in operations:
        holder = "partner" if operation.path.startswith("/api/v1/leads/") else "lender"
        fuzz(operation, mode, headers={"Authorization": f"Bearer {keys[holder]}"})


def fuzz(operation, mode: GenerationMode, *, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES[mode], deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
