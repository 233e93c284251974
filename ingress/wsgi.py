"""WSGI entry point for gunicorn: ``gunicorn ingress.wsgi:app``."""

from chatops_core.logging_setup import configure_logging
from chatops_core.settings import load_settings
from ingress.app import create_app

settings = load_settings()
configure_logging(settings.log_level)
app = create_app(settings)
