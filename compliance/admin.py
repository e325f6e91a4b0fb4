"""Staff read who viewed consumers' contact details and what was erased; neither can be edited."""

from django.contrib import admin

from core.readonly import ReadOnlyAdminMixin

from .models import ContactAccess, Erasure


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(ContactAccess)
class ContactAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "lender", "lead", "channel", "path", "ip_address")
    list_filter = ("channel", "at")
    list_select_related = ("user", "lender", "lead")
    search_fields = ("=lead__id", "user__username", "lender__name", "=ip_address")
    date_hierarchy = "at"


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ("at", "consumer_id", "reason", "requested_by", "note")
    list_filter = ("reason",)
    list_select_related = ("requested_by",)
    search_fields = ("=consumer_id",)
