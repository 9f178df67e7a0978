# Costboard: one image for web (granian), worker and beat (Celery); docker-compose.yml runs it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    COSTBOARD_VAR_DIR=/app/var

WORKDIR /app

# The uv the Makefile pins; it installs exactly what uv.lock pins, without the dev group.
# Dependencies first, so a code change reuses this layer.
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project && rm -rf /root/.cache/uv

COPY . .
# Static files (plotly.min.js included) are collected at build time; whitenoise serves them.
# settings.py refuses to load without a SECRET_KEY: this one exists only during the build; and
# without a DATABASE_URL it would start an embedded PostgreSQL server, which collectstatic never uses.
RUN SECRET_KEY=build-time-only-not-a-secret DATABASE_URL=postgres://build-time-only@127.0.0.1/none \
    python manage.py collectstatic --no-input -v 0 \
    && useradd --system --uid 10001 --home-dir /app costboard \
    && mkdir -p /app/var && chown -R costboard /app/var
USER costboard

EXPOSE 8000
# costboard/serve.py: granian, one worker per core with 8 threads, as bench/ingest.py measures
# it; WEB_CONCURRENCY and WEB_THREADS change the counts (docker-compose.yml sets them).
CMD ["python", "-m", "costboard.serve", "--bind", "0.0.0.0:8000", "--access-log"]
