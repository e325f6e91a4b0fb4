"""Rebuild analytics' daily rollup from the deliveries: after a deploy that sold leads with older code, or to
check it (--check changes nothing and says which lenders differ)."""

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from marketplace.models import Delivery
from marketplace.rollup import rollup_computed, rollup_rebuild, rollup_stored


class Command(BaseCommand):
    help = "Rebuild (or --check) analytics' daily rollup of every lender's deliveries, or of --lender ids."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lender", type=int, action="append", help="a lender id (repeatable)")
        parser.add_argument("--check", action="store_true", help="report differences, write nothing")

    def handle(self, *args, lender: list[int] | None = None, check: bool = False, **options) -> None:
        lender_ids = lender or sorted(
            set(Delivery.objects.order_by().values_list("lender_id", flat=True).distinct())
        )
        differing = 0
        for lender_id in lender_ids:
            if check:
                with transaction.atomic():
                    computed, stored = (
                        rollup_computed(lender_id=lender_id),
                        rollup_stored(lender_id=lender_id),
                    )
                rows = sum(1 for k in computed.keys() | stored.keys() if computed.get(k) != stored.get(k))
            else:
                rows = rollup_rebuild(lender_id=lender_id)
            if rows:
                differing += 1
                verb = "differs in" if check else "rebuilt,"
                self.stdout.write(f"lender {lender_id}: {verb} {rows} row(s)")
        self.stdout.write(f"{len(lender_ids)} lender(s) checked, {differing} differed.")
        if check and differing:
            raise SystemExit(1)
