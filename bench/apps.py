from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmarks (``manage.py bench``, ``bench_live``): they drive the whole stack, and nothing imports them."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "bench"
