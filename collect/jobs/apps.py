from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "collect.jobs"
    label = "jobs"
