from django.contrib import admin

from .models import Child, ChildcareBand


@admin.register(ChildcareBand)
class ChildcareBandAdmin(admin.ModelAdmin):
    list_display = ["__str__", "label_ja", "min_age_months", "max_age_months", "slots"]
    list_filter = ["session__edition"]
    list_select_related = ["session__edition"]


@admin.register(Child)
class ChildAdmin(admin.ModelAdmin):
    list_display = ["application", "position", "name", "name_kana", "date_of_birth"]
    list_select_related = ["application"]
    search_fields = ["application__number", "name", "name_kana"]
    raw_id_fields = ["application"]
