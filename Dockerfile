# A CUDA-capable image that serves Headstart on port 8000, data and checkpoint included.
# The first stage builds the wheel; the image installs it, so it serves exactly what a
# `pip install` would: the package, its page, templates, checkpoints and every shipped sweep.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY headstart ./headstart
COPY static ./static
COPY templates ./templates
COPY docs/sweep ./docs/sweep
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*
# PyPI's torch 2.14.1 wheel for Linux x86-64 is the CUDA build; it falls back to the CPU without a GPU.
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/headstart-*.whl && rm -rf /wheels
ENV HEADSTART_DEVICE=auto
# The container's own address is not one students can reach: run it with
# -e HEADSTART_CLASS_ADDRESS=<host:port students open> for the class code's link.
EXPOSE 8000
CMD ["headstart", "serve", "--host", "0.0.0.0", "--port", "8000"]
