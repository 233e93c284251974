"""Shared core of the ChatOps incident service: models, settings, providers, incidents.

This package imports neither Flask nor Celery; the ingress and the workers both build on it.
"""

__version__ = "0.1.0"
