"""The Celery app module: ``celery -A workers.app worker``."""

import logging
import warnings

from celery.exceptions import CPendingDeprecationWarning
from celery.signals import worker_ready

from chatops_core.logging_setup import configure_logging
from chatops_core.settings import load_settings
from workers.celery_app import make_celery

settings = load_settings()
configure_logging(settings.log_level)
# Celery's and kombu's own lines (each task received and succeeded, connected, ready) are
# chatter next to ours; they show with CHATOPS_LOG_LEVEL=DEBUG. Their warnings and errors (a
# lost broker connection and each attempt to reconnect) always show.
if settings.log_level != "DEBUG":
    for name in ("celery", "kombu"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
app = make_celery(settings)


@worker_ready.connect
def _quiet_connection_loss_warning(**_: object) -> None:
    # We chose to let running tasks finish when the broker connection is lost
    # (worker_cancel_long_running_tasks_on_connection_loss=False); Celery warns of its future
    # default on every reconnect. Set once Celery's own warning filters are in place.
    warnings.filterwarnings(
        "ignore",
        message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
        category=CPendingDeprecationWarning,
    )
