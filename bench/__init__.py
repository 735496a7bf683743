"""Benchmarks (not tests): ``python -m bench`` runs the proxy figures; see bench/__main__.py."""
