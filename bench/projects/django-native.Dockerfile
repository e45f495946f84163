# A carefully hand-optimized Dockerfile for tests/fixtures/init/django-native:
# multi-stage (compilers and Node only in build stages), dependencies before
# code, cache mounts for apt, pip and npm, non-root runtime.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends build-essential python3-dev libpq-dev
RUN python3 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install -q -r /tmp/requirements.txt

FROM ${BASE} AS assets
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends nodejs npm
WORKDIR /build
COPY package.json package-lock.json build.js ./
COPY frontend ./frontend
RUN --mount=type=cache,target=/root/.npm npm ci && npm run build

FROM ${BASE}
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends libpq5
RUN useradd --uid 1000 --create-home app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
COPY --chown=1000:1000 . .
COPY --from=assets /build/dist /app/shop/assets/dist
RUN DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput
USER 1000
EXPOSE 8000
CMD ["gunicorn", "shop.wsgi", "--bind", "0.0.0.0:8000"]
