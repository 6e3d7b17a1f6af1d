"""Token-budgeted context bundles: sections of the seed specs and their dependencies, chosen and
cut to fit a budget, each item with its reason, tokens and source.

Reads a catalog version and what the service hands it (seed rankings, histories); it imports
ranking's analyzer and fusion, never the service or a door.
"""
