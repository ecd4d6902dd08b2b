from django.urls import path, re_path

from collect.api import tus, views

urlpatterns = [
    # The brief's endpoints, paths unchanged.
    path("upload-file/", views.UploadFileApi.as_view(), name="upload-file"),
    path("pause/<str:task_id>/", views.brief_alias(views.PauseApi, "pause").as_view()),
    path("resume/<str:task_id>/", views.brief_alias(views.ResumeApi, "resume").as_view()),
    path("revoke/<str:task_id>/", views.brief_alias(views.TerminateApi, "revoke").as_view()),
    path("export/", views.ExportBriefApi.as_view(), name="export"),
    path("exports/", views.ExportCreateApi.as_view(), name="export-create"),
    # The task resource.
    path("tasks/", views.TaskListApi.as_view(), name="task-list"),
    path("tasks/<str:task_id>/", views.TaskDetailApi.as_view(), name="task-detail"),
    path("tasks/<str:task_id>/pause/", views.PauseApi.as_view(), name="task-pause"),
    path("tasks/<str:task_id>/resume/", views.ResumeApi.as_view(), name="task-resume"),
    path("tasks/<str:task_id>/terminate/", views.TerminateApi.as_view(), name="task-terminate"),
    path("tasks/<str:task_id>/errors/", views.TaskErrorsApi.as_view(), name="task-errors"),
    path("tasks/<str:task_id>/download/", views.TaskDownloadApi.as_view(), name="task-download"),
    path(
        "tasks/<str:task_id>/rejected-rows/",
        views.TaskRejectedRowsApi.as_view(),
        name="task-rejected-rows",
    ),
    # The caller's datasets.
    path("datasets/", views.DatasetListApi.as_view(), name="dataset-list"),
    path("datasets/<path:name>/", views.DatasetDetailApi.as_view(), name="dataset-detail"),
    # Resumable uploads (tus 1.0.0); tus clients use the Location they get back verbatim.
    path("uploads/", tus.UploadCreateApi.as_view(), name="uploads"),
    path("uploads", tus.UploadCreateWithoutSlashApi.as_view()),
    re_path(r"^uploads/(?P<upload_id>[^/]+)/?$", tus.UploadApi.as_view(), name="upload"),
]
