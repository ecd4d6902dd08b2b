# One image for both roles of the distributed deployment: `collect serve` and `collect worker`.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COLLECT_DATA_DIR=/data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY collect ./collect
RUN pip install --no-cache-dir -c requirements/constraints.txt . \
    && useradd --create-home --uid 1000 collect \
    && mkdir -p /data && chown collect /data

USER collect
EXPOSE 8000
CMD ["collect", "serve", "--host", "0.0.0.0", "--port", "8000"]
