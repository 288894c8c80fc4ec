# syntax=docker/dockerfile:1
# The cg_assets code location: a Dagster gRPC code server, and (under the Helm chart's
# K8sRunLauncher) the image of every run pod. Small: a slim base, no compilers, no pip
# cache, only the runtime packages. Pinned: the base image tag (pin its digest too, see
# deploy/README.md) and every Python package (deploy/requirements.txt). Non-root.
#   docker build -t cg-assets:$(git rev-parse --short HEAD) .
#   docker run --rm -p 4000:4000 --env-file cg.env cg-assets:<tag>
# Not built on the machine this was written on (no Docker daemon there); its install step
# and the code location it serves were checked in a plain Python 3.11 venv.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-deps --only-binary=:all: -r /tmp/requirements.txt \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --no-create-home dagster \
 && mkdir -p /opt/dagster/app /opt/dagster/dagster_home \
 && chown dagster:dagster /opt/dagster/dagster_home
COPY --from=deps /opt/venv /opt/venv
# The package (the simulator lives beside it in cg_simulator/, which .dockerignore keeps out:
# a stand-in API with a demo secret has no place in production), and pyproject.toml, where
# the dg project config the definitions load through (load_from_defs_folder) lives.
COPY --chown=root:root cg_assets /opt/dagster/app/cg_assets
COPY --chown=root:root pyproject.toml /opt/dagster/app/pyproject.toml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/dagster/app \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home
WORKDIR /opt/dagster/app
USER 10001:10001
EXPOSE 4000
# The Helm chart replaces this with `dagster api grpc` and its dagsterApiGrpcArgs.
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "4000", "--module-name", "cg_assets.definitions"]
