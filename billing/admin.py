"""Staff admin for accounts and the ledger. Nobody edits a balance or an entry: money moves only through
billing.services (top-up, credit, adjustment), from a form linked on the account page."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.admin_lists import LargeListMixin
from core.readonly import ReadOnlyAdminMixin
from leads.search import LEAD_SEARCH_HELP, MAX_ID, leads_search_q
from lenders import admin as lenders_admin
from lenders.models import Lender

from .models import Account, LedgerEntry
from .services import InsufficientFunds, account_adjust, account_credit, account_open, account_top_up

RECENT_ENTRIES = 50

POSTERS = {
    LedgerEntry.Kind.TOP_UP: account_top_up,
    LedgerEntry.Kind.CREDIT: account_credit,
    LedgerEntry.Kind.ADJUSTMENT: account_adjust,
}


class RecentEntriesFormSet(BaseInlineFormSet):
    """The newest entries only: an old account has thousands, the changelist link shows them all."""

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset().select_related("created_by")[:RECENT_ENTRIES]
        return self._recent


class LedgerEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LedgerEntry
    formset = RecentEntriesFormSet
    fields = readonly_fields = ("created_at", "kind", "amount", "balance_after", "memo", "created_by")
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = f"ledger (newest {RECENT_ENTRIES} entries)"


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ("lender", "credit_limit", "low_balance_threshold")

    def clean_credit_limit(self) -> Decimal:
        # The balance is not a form field, so the database check on it would only fire as a 500: say it here.
        limit = self.cleaned_data["credit_limit"]
        if self.instance.pk and self.instance.balance < -limit:
            balance = self.instance.balance
            raise forms.ValidationError(
                f"The balance is ${balance}; the credit limit cannot be below ${-balance}."
            )
        return limit


class PostEntryForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in POSTERS], label="Entry")
    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        help_text="Top-ups and credits are positive. An adjustment may be negative (it takes money back).",
    )
    memo = forms.CharField(max_length=200, required=False, help_text="Required for credits and adjustments.")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what clean() returns; its stubs say Optional, for overrides
        kind, amount = data.get("kind"), data.get("amount")
        if amount is not None:
            if kind in (LedgerEntry.Kind.TOP_UP, LedgerEntry.Kind.CREDIT) and amount <= 0:
                self.add_error("amount", "Enter an amount above $0.")
            if kind == LedgerEntry.Kind.ADJUSTMENT and amount == 0:
                self.add_error("amount", "An adjustment cannot be zero.")
        if kind in (LedgerEntry.Kind.CREDIT, LedgerEntry.Kind.ADJUSTMENT) and not data.get("memo"):
            self.add_error("memo", "Say why: the memo is on the lender's statement.")
        return data


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ("lender", "balance", "credit_limit", "available", "low_balance_threshold", "updated_at")
    search_fields = ("lender__name",)
    list_filter = ("lender__status",)
    list_select_related = ("lender",)
    raw_id_fields = ("lender",)
    readonly_fields = ("balance", "available", "money_links", "updated_at")
    inlines = (LedgerEntryInline,)

    def get_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        if obj is None:
            return ("lender", "credit_limit", "low_balance_threshold")
        return (
            "lender",
            "balance",
            "available",
            "money_links",
            "credit_limit",
            "low_balance_threshold",
            "updated_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        return (*self.readonly_fields, "lender") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the ledger protects it, and the history must stay

    @admin.display(description="available")
    def available(self, obj: Account) -> Decimal:
        return obj.available

    @admin.display(description="money")
    def money_links(self, obj: Account) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "—")
        post = reverse("admin:billing_account_post_entry", args=[obj.pk])
        ledger = reverse("admin:billing_ledgerentry_changelist") + f"?account__id__exact={obj.pk}"
        links = [(f"{post}?kind={k.value}", f"Post a {k.label.lower()}") for k in POSTERS]
        links.append((ledger, "Full ledger"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def get_urls(self):
        custom = [
            path(
                "<int:account_id>/post/",
                self.admin_site.admin_view(self.post_entry_view),
                name="billing_account_post_entry",
            ),
        ]
        return custom + super().get_urls()

    def post_entry_view(self, request: HttpRequest, account_id: int) -> HttpResponse:
        """A top-up, credit or adjustment, posted through billing.services with the account locked."""
        account = get_object_or_404(Account.objects.select_related("lender"), pk=account_id)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        form = PostEntryForm(request.POST or None, initial={"kind": request.GET.get("kind", "top_up")})
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            try:
                entry = POSTERS[d["kind"]](
                    account_id=account.pk, amount=d["amount"], memo=d["memo"], user=request.user
                )
            except (ValueError, InsufficientFunds) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Posted {entry.get_kind_display().lower()} of ${entry.amount}; balance is now "
                    f"${entry.balance_after}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:billing_account_change", args=[account.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": account,
            "account": account,
            "form": form,
            "title": f"Post an entry to {account}",
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/billing/account/post_entry.html", context)


def ledger_search_q(term: str, *, path: str = "") -> Q | None:
    """An entry by its number ("#42"), or a lead's charge by the lead (leads.search)."""
    term = term.strip()
    if term.startswith("#") and term[1:].isdigit():
        return Q(**{f"{path}pk": int(term[1:])}) if int(term[1:]) <= MAX_ID else None
    return leads_search_q(term, path=f"{path}delivery__lead__")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LargeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Append-only: entries are written by billing.services and never changed, here or anywhere."""

    list_display = ("created_at", "lender", "kind", "amount", "balance_after", "memo", "created_by")
    # The lenders are a small table: a filter of them, not a search across it; dates, no date hierarchy.
    list_filter = ("kind", "created_at", "account__lender")
    search_fields = ("#entry", "lead")
    search_help_text = "#42 for entry 42; otherwise the lead whose charge it is: " + LEAD_SEARCH_HELP
    search_q = staticmethod(ledger_search_q)
    list_select_related = ("account__lender", "created_by")
    fields = readonly_fields = (
        "account",
        "kind",
        "amount",
        "balance_after",
        "memo",
        "created_by",
        "created_at",
    )

    @admin.display(description="lender", ordering="account__lender__name")
    def lender(self, obj: LedgerEntry) -> str:
        return obj.account.lender.name


# The lender's page, with money: every lender buys from an account, so a lender made here gets its (empty)
# account at once. The lenders app registers the page; billing, above it, adds the account.
admin.site.unregister(Lender)


@admin.register(Lender)
class LenderAdmin(lenders_admin.LenderAdmin):
    def save_model(self, request: HttpRequest, obj: Lender, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        account_open(lender=obj)
