"""Fixtures for pullgate's integration tests: real registries, images, clients.

Every server these modules start listens on 127.0.0.1 only.
"""
