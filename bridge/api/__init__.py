"""The REST API (`/api/v1`): a front door beside the SMTP intake and the SMPP server."""
