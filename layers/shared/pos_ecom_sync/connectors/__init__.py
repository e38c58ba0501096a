"""Vendor API clients (X-Series POS, eCom), each behind the connection's shared rate budget.

Imported only by functions that call vendors, so the others do not pay for loading httpx.
"""
