"""The API's and webhooks' output serializers represent objects as DRF documents, with no private walk."""

import pytest
from rest_framework import serializers

from integrations.api import intake, lender

OUTPUTS = [
    cls
    for module in (intake, lender)
    for name, cls in vars(module).items()
    if name.endswith("Output") and isinstance(cls, type) and issubclass(cls, serializers.BaseSerializer)
]


class FromHook(serializers.Field):
    """A read-only field whose value comes from get_attribute(), the hook DRF documents for custom fields."""

    def __init__(self) -> None:
        super().__init__(source="*", read_only=True)

    def get_attribute(self, instance: object) -> str:
        return "from get_attribute"

    def to_representation(self, value: str) -> str:
        return value


def with_only_a_hook(cls: type[serializers.BaseSerializer]) -> type[serializers.BaseSerializer]:
    """`cls` with its declared fields removed (DRF drops a parent's field set to None) and one FromHook."""
    attrs: dict = {name: None for name in cls._declared_fields}
    attrs["hook"] = FromHook()
    if issubclass(cls, serializers.ModelSerializer):
        attrs["Meta"] = type("Meta", (), {"model": cls.Meta.model, "fields": ["hook"]})
    return type(f"{cls.__name__}WithHook", (cls,), attrs)


def test_every_output_serializer_is_found():
    names = {cls.__name__ for cls in OUTPUTS}
    assert {"DeliveryListOutput", "DeliveryDetailOutput", "LeadOutput", "QualificationOutput"} <= names


@pytest.mark.parametrize("cls", OUTPUTS, ids=lambda cls: cls.__name__)
def test_a_fields_own_get_attribute_decides_its_value(cls):
    """Issue 13.5: PlainOutput (first in the bases of the webhook payload's, the lender API's and the
    qualification's serializers) walked each field's source on DRF's private attributes and never called a
    field's get_attribute() unless its own walk failed, so a custom field overriding that documented hook
    silently showed the wrong value. The serializers now use DRF's own to_representation."""
    assert with_only_a_hook(cls)().to_representation(object()) == {"hook": "from get_attribute"}
