"""The legacy monolith: the old catalog and order API on one database, kept in step with the
product service by its events, so a strangler-fig router can send a share of the catalog's reads
to either and get the same answers."""
