"""The market: price floors, matching and allocation, Delivery and its pipeline, returns, the qualify -> sell
batch."""
