from django.urls import path

from . import views

app_name = "lottery"

urlpatterns = [
    path("lottery/<slug:code>/", views.public, name="public"),
    path("lottery/<slug:code>/audit.json", views.audit_file, name="audit_file"),
]
