"""A tiny shop service used as strata's Python web example."""
