"""The group commits' lanes of the order queue (`Store.grouped`'s `lane`).

With one database thread (SQLite) every group commit shares one lane anyway. With several
(PostgreSQL) a lane is one commit loop, one transaction at a time, and different lanes
commit side by side. The functions named here share theirs so that what belongs together
commits together, one transaction where there were two for an SMS at a steady load:
"""

from __future__ import annotations

# The writes that queue orders (the SMTP intake, the REST API, the SMPP server) and the
# dispatcher's claims: a claim woken by a mail as it is queued joins its commit and
# claims its orders in that transaction; a claim with nothing to join commits beside the
# lane, never holding a message's commit behind it.
ORDERS = "orders"

# What became of the orders: the dispatcher's outcomes, the delivery receipts as they
# arrive and the receipts step's rounds, which apply them in the commit that writes them.
OUTCOMES = "outcomes"
