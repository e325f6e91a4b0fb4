"""Pre-qualification letters: a one-page PDF a loan officer can send a borrower from the lead's page."""

from datetime import date, timedelta
from pathlib import Path

from django.utils import timezone
from fpdf import FPDF

from leads.choices import LoanPurpose, Product
from lenders.models import Lender, Membership
from marketplace.models import Delivery

LETTER_VALID_DAYS = 90
DISCLAIMER = (
    "This letter is not a commitment to lend, a loan approval or a loan offer. It is based on information "
    "the borrower provided, which has not been verified. Final approval is subject to a complete "
    "application, verification of income, assets, employment and credit, an acceptable appraisal and "
    "title, and the lender's underwriting guidelines in effect at the time of application. Rates, terms "
    "and amounts may change."
)


# DejaVu Sans, vendored with its licence (portal/fonts/README.md): the PDF's built-in fonts cover Latin-1
# only, and a borrower's name must be printed as written ("Zoë Nguyễn-Łukasz"), never with question marks.
FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVuSans"


def prequalification_letter(
    *,
    delivery: Delivery,
    lender: Lender,
    officer: Membership | None = None,
    today: date | None = None,
    compress: bool = True,
) -> bytes:
    """The letter for this delivery's borrower: lender and NMLS id, borrower, estimated amount, products,
    date and expiry, signed by the loan officer (name, NMLS id, phone, e-mail) the borrower deals with, and
    the disclaimer that it is not a commitment to lend. An officer's missing detail is left out, never
    printed as a placeholder."""
    lead, consumer = delivery.lead, delivery.lead.consumer
    today = today or timezone.localdate()
    expires = today + timedelta(days=LETTER_VALID_DAYS)
    products = ", ".join(dict(Product.choices).get(p, p) for p in lead.products or []) or "To be determined"
    amount = f"${lead.estimate:,.0f}" if lead.estimate else "-"

    pdf = FPDF(format="letter", unit="mm")
    pdf.set_compression(compress)
    pdf.set_title(f"Pre-qualification letter - {lender.name}")
    pdf.add_font(FONT, style="", fname=FONT_DIR / "DejaVuSans.ttf")
    pdf.add_font(FONT, style="B", fname=FONT_DIR / "DejaVuSans-Bold.ttf")
    pdf.set_author(lender.name)
    pdf.set_margins(22, 22, 22)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, *, size: float = 11, style: str = "", height: float = 6, gap: float = 0) -> None:
        pdf.set_font(FONT, style=style, size=size)
        pdf.multi_cell(width, height, text, new_x="LMARGIN", new_y="NEXT")
        if gap:
            pdf.ln(gap)

    line(lender.name, size=16, style="B", height=8)
    line(f"NMLS ID: {lender.nmls_id or 'not on file'}", size=10, gap=8)
    line("Pre-Qualification Letter", size=14, style="B", height=8, gap=2)
    line(f"Date: {today:%B %d, %Y}", size=10)
    line(f"Valid until: {expires:%B %d, %Y}", size=10, gap=6)
    line(f"Borrower: {consumer.full_name}", style="B")
    line(f"Property: {lead.city}, {lead.state} {lead.zip_code}", gap=4)
    line(
        f"Dear {consumer.full_name},",
        gap=2,
    )
    line(
        f"Based on the information you provided, you are pre-qualified for a "
        f"{dict(LoanPurpose.choices).get(lead.purpose, lead.purpose).lower()} mortgage loan of up to:",
        gap=2,
    )
    line(amount, size=20, style="B", height=10, gap=2)
    line(f"Loan programs: {products}", gap=8)
    line("Sincerely,", gap=1)
    if officer is not None:
        user = officer.user
        line(user.get_full_name() or user.get_username(), style="B")
        line(f"Loan Officer, {lender.name}", size=10)
        contact = [
            f"NMLS ID: {officer.nmls_id}" if officer.nmls_id else "",
            f"Phone: {officer.phone_display}" if officer.phone else "",
            user.email,
        ]
        line(" · ".join(c for c in contact if c), size=10, gap=10)
    else:
        line(lender.name, style="B", gap=10)
    line("Important", size=9, style="B", height=5)
    line(DISCLAIMER, size=9, height=4.5, gap=4)
    # For the lender's files (ledger, CRM), not for the borrower: small, at the foot.
    line(f"Reference {lead.reference}", size=8, height=4)
    return bytes(pdf.output())
