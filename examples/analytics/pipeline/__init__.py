"""A small analytics pipeline: count awards per agency, optionally in R."""
