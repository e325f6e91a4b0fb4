"""OpenAPI extensions (imported in AppConfig.ready): the bearer-key security scheme for ApiKeyAuthentication,
conditional requirements, and decimals that are never negative."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)


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


class RequiredWhenExtension(OpenApiSerializerExtension):
    """An input serializer's `required_when` (integrations.api.common.RequiredWhen) in the schema: a oneOf
    with one case per set of required fields and one for the values that require none, so that clients and
    fuzzers read the rule the server enforces. Kept under REQUIRED_WHEN until required_when_one_of runs, after
    drf-spectacular's enum hook, which would otherwise merge the cases' one-value enums into one component."""

    target_class = "integrations.api.common.RequiredWhen"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return schema
        cases = []
        for field, by_value in self.target.required_when.items():
            groups: dict[tuple[str, ...], list] = {}
            for value in self.target.fields[field].choices:
                groups.setdefault(tuple(by_value.get(value, ())), []).append(value)
            for names, values in groups.items():
                cases.append(
                    {
                        "type": "object",
                        "properties": {field: {"enum": values}, **{n: _given(schema, n) for n in names}},
                        "required": [field, *names],
                    }
                )
        if cases:
            schema[REQUIRED_WHEN] = cases
        return schema


REQUIRED_WHEN = "x-required-when"


def required_when_one_of(result: dict, generator, request, public) -> dict:
    """POSTPROCESSING_HOOKS, after drf-spectacular's enum hook: RequiredWhenExtension's cases become oneOf."""
    for schema in result.get("components", {}).get("schemas", {}).values():
        cases = schema.pop(REQUIRED_WHEN, None)
        if cases:
            schema["oneOf"] = cases
    return result


def _given(schema: dict, name: str) -> dict:
    """What a required-when field must be beyond its own schema: text that is not blank."""
    prop = schema.get("properties", {}).get(name, {})
    is_text = prop.get("type") == "string" or "oneOf" in prop
    return {"minLength": 1, "pattern": r"\S"} if is_text and "format" not in prop else {}


class NonNegativeDecimalExtension(OpenApiSerializerFieldExtension):
    """drf-spectacular writes every decimal string's pattern as `^-?...`, whatever its min_value: amounts that
    are never negative (money the consumer has, a funded loan, a price) say so."""

    target_class = "rest_framework.fields.DecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        min_value = self.target.min_value
        pattern = schema.get("pattern")
        if (
            min_value is not None
            and min_value >= 0
            and isinstance(pattern, str)
            and pattern.startswith("^-?")
        ):
            schema["pattern"] = "^" + pattern[3:]
        return schema
