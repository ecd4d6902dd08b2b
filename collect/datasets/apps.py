from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "collect.datasets"
    label = "datasets"
