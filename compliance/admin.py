"""Staff read who viewed consumers' contact details and what was erased (neither can be edited), open a
consumer (the view is logged) and erase one."""

from django.contrib import admin
from django.http import HttpRequest

from core.admin_lists import LargeListMixin
from core.clientip import client_ip
from core.readonly import ReadOnlyAdminMixin
from leads.models import LEAD_JSON_FIELDS, Consumer, Lead
from leads.search import CONSUMER_SEARCH_HELP, LEAD_SEARCH_HELP, consumers_search_q, leads_search_q

from .models import ContactAccess, Erasure, OptOut
from .services import consumer_erase, contact_access_record_many


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(ContactAccess)
class ContactAccessAdmin(LargeListMixin, ReadOnlyAdmin):
    list_display = ("at", "user", "lender", "lead", "channel", "path", "ip_address")
    # Lenders are a small table: a filter, not a search across it; dates, no date hierarchy.
    list_filter = ("channel", "at", "lender")
    list_select_related = ("user", "lender", "lead")
    list_defer = tuple(f"lead__{f}" for f in LEAD_JSON_FIELDS)
    search_fields = ("lead",)
    search_help_text = "The lead viewed: " + LEAD_SEARCH_HELP
    search_q, search_path = staticmethod(leads_search_q), "lead__"


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ("at", "consumer_id", "reason", "requested_by", "note")
    list_filter = ("reason",)
    list_select_related = ("requested_by",)
    search_fields = ("=consumer_id",)


@admin.register(OptOut)
class OptOutAdmin(ReadOnlyAdmin):
    """Consumers' stops, as evidence: made and lifted only by the consumer (STOP, START, unsubscribe)."""

    list_display = ("created_at", "channel", "source", "keyword", "lead", "lender", "revoked_at")
    list_filter = ("channel", "source", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("lead", "lender")
    search_fields = ("=lead__id", "=address_sha256")
    raw_id_fields = ("lead", "lender")


@admin.register(Consumer)
class ConsumerAdmin(LargeListMixin, admin.ModelAdmin):
    # The list shows no contact details: opening a consumer shows them, and that view is logged.
    list_display = ("id", "first_name", "last_name", "created_at", "erased_at")
    search_fields = ("id", "e-mail", "phone", "last name")
    search_help_text = CONSUMER_SEARCH_HELP
    search_q = staticmethod(consumers_search_q)
    list_filter = (("erased_at", admin.EmptyFieldListFilter),)
    readonly_fields = ("created_at", "erased_at")
    actions = ["erase_consumers"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # leads protect their consumer; erasure is a service, not a delete

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        lead_ids = (
            list(Lead.objects.filter(consumer_id=object_id).values_list("id", flat=True))
            if (object_id.isdigit())
            else []
        )
        if lead_ids:
            contact_access_record_many(
                lead_ids=lead_ids,
                channel=ContactAccess.Channel.ADMIN,
                user=request.user,
                path=request.path,
                ip_address=client_ip(request),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Erase personal data (consumer's request)")
    def erase_consumers(self, request: HttpRequest, queryset) -> None:
        ids = list(queryset.filter(erased_at__isnull=True).values_list("id", flat=True))
        for consumer_id in ids:
            consumer_erase(consumer_id=consumer_id, requested_by=request.user, note="admin action")
        self.message_user(
            request, f"Erased the personal data of {len(ids)} consumer(s); the erasure is logged."
        )
