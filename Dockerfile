# The KMS server image: slim Python, the project installed with pip, running as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /opt/kms
COPY pyproject.toml README.md ./
COPY kms ./kms
COPY ckms ./ckms
COPY attestation ./attestation
COPY bootstrap ./bootstrap
RUN pip install . \
    && useradd --system --home-dir /var/lib/kms --create-home --shell /usr/sbin/nologin kms \
    && rm -rf /opt/kms/build

USER kms
WORKDIR /var/lib/kms
EXPOSE 9998
ENTRYPOINT ["kms-server"]
CMD ["--hostname", "0.0.0.0", "--port", "9998", "--sqlite-path", "/var/lib/kms/sqlite-data"]
