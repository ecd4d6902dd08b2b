from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "collect.uploads"
    label = "uploads"

    def ready(self) -> None:
        from collect.jobs.sweeper import register_sweep
        from collect.uploads.services import upload_sweep

        register_sweep(upload_sweep)
