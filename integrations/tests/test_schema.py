"""The schema and its docs page: bearer auth declared, problem responses documented, Swagger UI offline."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_declares_bearer_auth_and_problem_responses(client):
    schema = client.get("/api/schema/?format=json").json()

    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        **schema["components"]["securitySchemes"]["ApiKey"],
        "type": "http",
        "scheme": "bearer",
    }
    create = schema["paths"]["/api/v1/leads/"]["post"]
    assert create["security"] == [{"ApiKey": []}]
    assert set(create["responses"]) >= {"202", "400", "401", "403", "415", "422", "429"}
    assert "application/problem+json" in create["responses"]["400"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


def test_swagger_ui_is_served_from_our_own_static_files(client):
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()
