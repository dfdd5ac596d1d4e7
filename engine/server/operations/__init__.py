"""One synchronous function per SeeMe operation, run in one worker thread per request.

An operation is handed a :class:`Call` (the store, who is asking, the path's
ids already checked to be the caller's, the parsed query and body), merges
patch fields and calls the store. ``engine.server.routes`` runs the
authorization, the parsing and the operation in the same thread hop.

    call.py       Call (what an operation gets) and Reply (content with headers)
    accounts.py   logout, applications
    datasets.py   datasets, versions
    labels.py     labels, label stats, splits
    items.py      items, item states, annotations
"""

from engine.server.operations.call import Call, Reply

__all__ = ["Call", "Reply"]
