# A hand-optimized poetry Dockerfile for tests/fixtures/projects/poetry-app:
# poetry in a build stage, dependencies (main group + the compat extra)
# before the code, the runtime with the venv and the app only.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
RUN --mount=type=cache,target=/root/.cache/pip python3 -m venv /opt/poetry && \
    /opt/poetry/bin/pip install -q poetry==2.5.1
RUN python3 -m venv /opt/venv
# poetry's HTTP client trusts certifi's roots, not the system store: behind
# a TLS-intercepting proxy (this machine, many companies) it needs this.
ENV VIRTUAL_ENV=/opt/venv POETRY_NO_INTERACTION=1 REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
COPY pyproject.toml poetry.lock ./
RUN --mount=type=cache,target=/root/.cache/pypoetry /opt/poetry/bin/poetry install -q --only main --extras compat --no-root
COPY . .
RUN --mount=type=cache,target=/root/.cache/pypoetry /opt/poetry/bin/poetry build -q -f wheel && \
    /opt/venv/bin/pip install -q --no-deps dist/*.whl

FROM ${BASE}
RUN useradd --uid 1000 app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
USER 1000
CMD ["poetry-app"]
