"""The Celery app module: ``celery -A workers.app worker``."""

from chatops_core.logging_setup import configure_logging
from chatops_core.settings import load_settings
from workers.celery_app import make_celery

settings = load_settings()
configure_logging(settings.log_level)
app = make_celery(settings)
