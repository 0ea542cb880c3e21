from django.urls import path

from . import views

app_name = "registration"

urlpatterns = [
    path("", views.home, name="home"),
    path("privacy/", views.page, {"template": "registration/privacy.html"}, name="privacy"),
    path(
        "how-the-lottery-works/",
        views.page,
        {"template": "registration/lottery_info.html"},
        name="lottery_info",
    ),
    path("my/", views.resend_link, name="resend_link"),
    path("my/<str:token>/", views.my_application, name="my_application"),
    path("my/<str:token>/change/", views.my_application_edit, name="my_application_edit"),
    path("my/<str:token>/withdraw/", views.my_application_withdraw, name="my_application_withdraw"),
    path("my/<str:token>/ticket/", views.my_ticket, name="my_ticket"),
    path("my/<str:token>/calendar.ics", views.my_calendar, name="my_calendar"),
    path("<slug:code>/", views.edition_home, name="edition"),
    path("<slug:code>/booths/<slug:session>/", views.booths, name="booths"),
    path("<slug:code>/apply/", views.apply_input, name="apply_input"),
    path("<slug:code>/apply/confirm/", views.apply_confirm, name="apply_confirm"),
    path("<slug:code>/apply/done/", views.apply_done, name="apply_done"),
]
