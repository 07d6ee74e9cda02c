# syntax=docker/dockerfile:1
# One image per function, all from this file:
#   docker build --build-arg FUNCTION=sli-calculator -t sla-sli-calculator .
# FUNCTION is the function's directory under functions/ (skaffold.yaml passes it).

ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: the shared library and the serving framework in a virtualenv, so the
# runtime stage copies one directory and carries no compiler or pip cache.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
# functions-framework (a dependency of the project) serves the handler; since 3.9
# it brings Starlette and uvicorn for its --asgi mode.
RUN pip install .

FROM ${PYTHON_IMAGE}
ARG FUNCTION
RUN test -n "${FUNCTION}" || (echo "build with --build-arg FUNCTION=<name>" >&2; exit 1)
# A fixed non-root uid, repeated in the Knative Services' securityContext.
RUN groupadd --system --gid 10001 sla \
    && useradd --system --uid 10001 --gid sla --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin sla
COPY --from=build /opt/venv /opt/venv
# Only this function's handler; the files stay root's, read-only to the process.
COPY functions/${FUNCTION}/ /app/functions/${FUNCTION}/
WORKDIR /app
# The root filesystem is read-only on the cluster: no bytecode written at run time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FUNCTION_SOURCE=/app/functions/${FUNCTION}/main.py
USER 10001:10001
EXPOSE 8080
# The http signature, not cloud_event: the shared adapter parses the CloudEvent and
# answers with an empty body or exactly one event (the cloud_event signature always
# answers "OK", which the Kafka broker takes for a failed delivery). Knative sets
# PORT (8080), which functions-framework reads; FUNCTION_SOURCE names the file.
CMD ["functions-framework", "--target=handler", "--signature-type=http", "--asgi"]
