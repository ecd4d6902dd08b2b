from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DatasetsConfig(AppConfig):
    name = "collect.datasets"
    label = "datasets"

    def ready(self) -> None:
        from collect.datasets.segments import register_sqlite_functions

        connection_created.connect(register_sqlite_functions)
