# Foresight service image. torch is installed first and pinned (later issues use it); pass
# --build-arg TORCH_INDEX_URL=<your CPU-only wheel index> to keep CUDA packages out of the image.
FROM python:3.11-slim
ARG TORCH_INDEX_URL=""
WORKDIR /app
# two malloc arenas: the request threads otherwise keep freed memory in one arena each (RSS creeps up
# in a soak although Python's own allocations stay flat; see docs/reliability.md)
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=2
RUN pip install --no-cache-dir torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
COPY pyproject.toml README.md ./
COPY service ./service
COPY forecasting ./forecasting
COPY policies ./policies
COPY migrations ./migrations
RUN pip install --no-cache-dir .
EXPOSE 8000
# Postgres is migrated explicitly, then the API starts (several replicas may share one database).
CMD ["sh", "-c", "foresight db upgrade && foresight serve --host 0.0.0.0 --port 8000"]
