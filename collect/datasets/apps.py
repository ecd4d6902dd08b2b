from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created


class DatasetsConfig(AppConfig):
    name = "collect.datasets"
    label = "datasets"

    def ready(self) -> None:
        from collect.datasets import checks  # noqa: F401 - registers the store's check

        connection_created.connect(_prepare_connection)
        setting_changed.connect(_store_setting_changed)


def _prepare_connection(
    sender: type[BaseDatabaseWrapper], connection: BaseDatabaseWrapper, **kwargs: Any
) -> None:
    from collect.datasets.stores import segment_store

    store = segment_store()
    if connection.vendor == store.vendor:
        store.connection_created(connection)


def _store_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "COLLECT_SEGMENT_STORE":
        from collect.datasets.stores import segment_store

        segment_store.cache_clear()
