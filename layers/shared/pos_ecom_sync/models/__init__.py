"""Domain models (pydantic v2): connections, catalog, stock, orders, and the change messages on the queues."""
