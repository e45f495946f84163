# uv's Docker guide (multistage) for tests/fixtures/init/uv-service, with uv
# from PyPI (no ghcr.io here): dependencies from the lock first, then the
# project non-editable, the runtime without uv.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
RUN --mount=type=cache,target=/root/.cache/pip python3 -m venv /opt/uv && /opt/uv/bin/pip install -q uv==0.13.9
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never UV_NATIVE_TLS=1 UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    /opt/uv/bin/uv sync --locked --no-install-project --no-dev
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv /opt/uv/bin/uv sync --locked --no-dev --no-editable

FROM ${BASE}
RUN useradd --uid 1000 app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
USER 1000
EXPOSE 8000
CMD ["tinyserve"]
