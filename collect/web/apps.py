from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "collect.web"
    label = "web"
    verbose_name = "Collect web page"
