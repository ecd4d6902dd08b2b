from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "collect.imports"
    label = "imports"
