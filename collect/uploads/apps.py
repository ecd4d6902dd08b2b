from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "collect.uploads"
    label = "uploads"
