FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends gettext curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml ./
COPY . .
RUN pip install . && useradd --system --uid 1000 seminar \
    && DJANGO_DEBUG=false SECRET_KEY=build-only python manage.py compilemessages --ignore=.venv \
    && DJANGO_DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown seminar /app/var
USER seminar
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "seminar_site.wsgi:application"]
