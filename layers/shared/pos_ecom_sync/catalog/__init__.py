"""Catalog sync POS -> eCom as pure rules: `map_family` (what eCom should hold) and `plan_catalog_sync` (the calls).

The product worker does the I/O around them: read the POS family, map, load state, plan, execute, record.
"""
