"""The SMPP front door: applications bind as ESMEs, submit SMS, get receipts and MO."""
