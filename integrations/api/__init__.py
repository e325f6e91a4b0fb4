"""The versioned JSON API mounted at /api/v1/: partner intake (intake.py) and the lender API (lender.py)."""
