from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "collect.imports"
    label = "imports"

    def ready(self) -> None:
        from collect.imports.job import ImportKind
        from collect.jobs.kinds import register_kind
        from collect.jobs.states import Kind

        register_kind(Kind.IMPORT, ImportKind())
