# 書かない窓口 service: slim Python, Japanese fonts, pinned dependencies from requirements.lock, non-root.
# At start: the definitions are checked, the database is migrated ONCE (before the workers start),
# the first admin is created on an empty database (its password is printed once to the log:
# `docker compose logs app`), then uvicorn serves with KAKANAI_WORKERS worker processes.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KAKANAI_ENV=production \
    KAKANAI_DATA_DIR=/var/lib/kakanai \
    KAKANAI_WORKERS=2 \
    KAKANAI_TRUSTED_PROXIES=127.0.0.1

# Fonts only (IPAex for text, IPAmj明朝 for names); no browser, no PDF tools: those are for the tests.
# Versions of Debian 12 (bookworm), the base image's release.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-ipaexfont=00401-5 fonts-ipamj-mincho=005.01-2.1 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 kakanai \
 && useradd --system --uid 10001 --gid kakanai --home-dir /app --shell /usr/sbin/nologin kakanai

WORKDIR /app
# Dependencies first, from the lock file (exact versions): this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY form_definitions ./form_definitions
# bench/ holds the assumptions and the model household (`kakanai bench visit`, the example in /docs).
COPY bench ./bench
# Editable install keeps migrations/ and form_definitions/ next to the code, where the app finds them;
# --no-deps: every dependency is already installed from the lock file.
RUN pip install --no-deps -e . \
 && mkdir -p /var/lib/kakanai \
 && chown kakanai:kakanai /var/lib/kakanai

USER 10001:10001
# The embedded SQLite database and the service's local files (mount a volume here).
VOLUME ["/var/lib/kakanai"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# KAKANAI_SECRET_KEY, KAKANAI_ENCRYPTION_KEYS (kakanai keys generate) and KAKANAI_DATABASE_URL must be
# provided: in production the service refuses the default secret and unencrypted storage.
# X-Forwarded-For/-Proto are believed only from KAKANAI_TRUSTED_PROXIES (the reverse proxy's address),
# which uvicorn reads as FORWARDED_ALLOW_IPS. `kakanai serve` gives open live streams 5 s at shutdown.
CMD ["sh", "-c", "kakanai check && FORWARDED_ALLOW_IPS=\"$KAKANAI_TRUSTED_PROXIES\" exec kakanai serve --host 0.0.0.0 --port 8000 --workers \"$KAKANAI_WORKERS\""]
