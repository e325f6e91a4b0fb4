"""OpenAPI: the bearer-key security scheme for ApiKeyAuthentication (imported in AppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Authorization: Bearer <key>`. Partners get keys from Lead Market staff; lenders make "
                "keys in the portal (Integrations → API keys). A key is shown once; keep several active "
                "to rotate."
            ),
        }
