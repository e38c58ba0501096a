"""Stock sync POS -> eCom as pure rules; the stock worker does the I/O around them.

`rules`: one variant (apply versioned POS levels, total over the connected outlets, the eCom write decision and
the claim protocol that keeps concurrent writers from leaving a wrong total). `outlets`: connecting and
disconnecting outlets (shipping methods to disable, totals to recompute in bounded chunks). `reservations`: units
of open online sales a POS has not taken from stock yet, held back from the total.
"""

# Variants the catalog worker creates track stock: the stock worker owns `stockLevel` from then on, and sends this
# with every level. Kept here, not in `catalog.actions`, so the stock worker's cold start does not build the
# catalog's action types.
NEW_VARIANT_STOCK_TRACKING = "enabled"
