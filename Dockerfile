# A CUDA-capable image that serves Headstart on port 8000, data and checkpoint included.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/headstart
COPY pyproject.toml README.md ./
COPY headstart ./headstart
COPY static ./static
COPY templates ./templates
# The shipped sweep, which the page draws as its head-start panel.
COPY docs/sweep/sweep.csv ./docs/sweep/sweep.csv
# PyPI's torch 2.14.1 wheel for Linux x86-64 is the CUDA build; it falls back to the CPU without a GPU.
RUN pip install --no-cache-dir -e .
ENV HEADSTART_DEVICE=auto
# The container's own address is not one students can reach: run it with
# -e HEADSTART_CLASS_ADDRESS=<host:port students open> for the class code's link.
EXPOSE 8000
CMD ["python", "-m", "headstart", "serve", "--host", "0.0.0.0", "--port", "8000"]
