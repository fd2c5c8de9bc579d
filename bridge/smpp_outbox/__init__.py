"""The SMPP outbox: deliver_sm waiting for a customer's receiver bind (receipts, MO SMS)."""
