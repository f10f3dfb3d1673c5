# 書かない窓口 service: slim Python, Japanese fonts, non-root, migrations applied at start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KAKANAI_ENV=production \
    KAKANAI_DATA_DIR=/var/lib/kakanai

RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-ipaexfont fonts-ipamj-mincho \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system kakanai && useradd --system --gid kakanai --home-dir /app --shell /usr/sbin/nologin kakanai

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY form_definitions ./form_definitions
# bench/ holds the assumptions and the model household of `kakanai bench visit`.
COPY bench ./bench
# Editable install keeps migrations/ and form_definitions/ next to the code, where the app finds them.
RUN pip install -e . \
 && mkdir -p /var/lib/kakanai && chown kakanai:kakanai /var/lib/kakanai

USER kakanai
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
# Open live connections (resident pages, the board) would hold a shutdown; 5 s is enough to drain.
# KAKANAI_SECRET_KEY, KAKANAI_ENCRYPTION_KEYS (kakanai keys generate) and KAKANAI_DATABASE_URL must be
# provided: in production the app refuses the default secret and unencrypted storage.
CMD ["sh", "-c", "kakanai check && kakanai migrate && exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --proxy-headers --timeout-graceful-shutdown 5"]
