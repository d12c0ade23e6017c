# Notify: one image for every way of running it.
#   docker build -t notify .
#   docker run -p 8080:8080 -p 50051:50051 -e NOTIFY_API_KEYS=... -e NOTIFY_JWT_SECRET=... notify
# The default command is `notify up` (every service and the edge in one process, embedded
# backends). docker-compose.yml runs the same image as one container per service instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the project (its packages, the generated gen/ code and the migrations), then drop
# the sources: the image runs the installed package only.
COPY . /tmp/notify-src
RUN pip install /tmp/notify-src \
    && rm -rf /tmp/notify-src

# Run as an unprivileged user. /app is its working directory, where `notify up` keeps its
# SQLite database (sqlite:///notify.db) unless NOTIFY_DATABASE_URL says otherwise.
RUN useradd --create-home --uid 10001 --user-group notify \
    && mkdir /app \
    && chown notify:notify /app
WORKDIR /app
USER notify

# 8080: the edge (REST, WebSocket; NOTIFY_HTTP_PORT). 50051: gRPC (NOTIFY_GRPC_PORT).
EXPOSE 8080 50051

# Fits a process that runs the edge (`notify up`, `notify serve realtime`). Processes without
# the edge have no HTTP port; docker-compose.yml checks those with the gRPC health service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('NOTIFY_HTTP_PORT') or '8080'), timeout=4)"]

CMD ["notify", "up"]
