"""In-memory HTTP simulators of the vendor APIs (X-Series POS, eCom store) for `make run` and tests.

Not shipped to Lambda. `common` holds the shared plumbing, `catalog` the seeded merchandise generator.
"""
