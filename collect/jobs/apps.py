from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "collect.jobs"
    label = "jobs"

    def ready(self) -> None:
        from collect.jobs import checks  # noqa: F401 - registers the dispatch check
