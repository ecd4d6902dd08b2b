from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "collect.exports"
    label = "exports"

    def ready(self) -> None:
        from collect.exports.job import ExportKind, export_sweep
        from collect.jobs.kinds import register_kind
        from collect.jobs.states import Kind
        from collect.jobs.sweeper import register_sweep

        register_kind(Kind.EXPORT, ExportKind())
        register_sweep(export_sweep)
