"""Lenders and their people: Lender, licences, Membership (owner, manager, officer), Subscription, the
team and invitations, and the rules that assign new leads to officers."""

from django.apps import AppConfig


class LendersConfig(AppConfig):
    name = "lenders"
