"""Admin for evidence (consent, ledger, access logs, loan limits): staff read it, nobody edits it."""

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """For a ModelAdmin or an inline: no add, change or delete, whatever the user's permissions."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyInlineMixin(ReadOnlyAdminMixin):
    """For an inline of evidence on another model's page: shown, never added to, changed or deleted."""

    extra = 0
    max_num: int | None = 0
    can_delete = False
