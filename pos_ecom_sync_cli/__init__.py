"""Operator CLI (`pos-ecom-sync`): manage connections of a local or deployed stack."""
