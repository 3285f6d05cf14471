"""Server settings, read once at start from ``OVERAIR_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from overair.hosts import HostPolicy
from overair.storage import BlobStore, S3Options, open_blob_store


class Settings(BaseSettings):
    """Everything the server can be told. Defaults give the embedded setup: SQLite plus a local folder."""

    model_config = SettingsConfigDict(env_prefix="OVERAIR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".overair"), description="Folder for the SQLite database and blobs.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty: SQLite in data_dir.")
    blob_url: str = Field(
        default="",
        description="Blob store URL (file:///path, memory:// or s3://bucket/prefix); empty: data_dir/blobs.",
    )
    s3_endpoint: str = Field(
        default="",
        description="URL of the S3-compatible server (Ceph, MinIO, Swift, R2 …); empty: AWS S3 (or "
        "AWS_ENDPOINT_URL).",
    )
    s3_region: str = Field(default="", description="The bucket's region; empty: AWS_REGION, else us-east-1.")
    s3_access_key_id: str = Field(default="", description="S3 access key id; empty: AWS_ACCESS_KEY_ID.")
    s3_secret_access_key: str = Field(
        default="", description="S3 secret access key; empty: AWS_SECRET_ACCESS_KEY.", repr=False
    )
    download_url: str = Field(
        default="",
        description="Base URL devices download blobs from (a CDN or the bucket's public URL), as "
        "<download_url>/<blob key>; empty: presigned URLs when s3_presign, else overair serves them.",
    )
    s3_presign: bool = Field(
        default=False, description="Devices download from presigned URLs of the S3 bucket (s3:// blob_url)."
    )
    s3_presign_seconds: int = Field(
        default=86_400,
        ge=600,
        le=604_800,
        description="How long a presigned download URL is valid; update-check answers holding them are "
        "rebuilt every half of it, so a URL a device receives stays valid at least that half.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    public_url: str = Field(
        default="",
        description="Base URL devices use to reach this server (download URLs are built from it); empty: "
        "the Host a request names, if it is an allowed host.",
    )
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names (optionally with :port) requests may address, besides the "
        "public URL's host, the loopback names and the bind address; others get 421. '*' allows any host "
        "(only behind a proxy that checks Host itself).",
    )
    workers: int = Field(default=1, ge=1, le=64)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_bundle_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Uncompressed bundle size cap."
    )
    max_bundle_entries: int = Field(default=20_000, ge=1)
    console_session_minutes: float = Field(
        default=480.0,
        gt=0,
        le=60 * 24 * 30,
        description="How long a console sign-in lasts before the access key is asked for again.",
    )
    cache_recheck_seconds: float = Field(
        default=1.0, ge=0.0, description="How stale another worker's release change may look, at most."
    )
    delta_min_saving: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Offer a binary delta only when it saves at least this share of the full download "
        "(0.2: the delta is at most 80% of the package's size).",
    )
    metrics_key: str = Field(
        default="",
        description="The bearer token GET /metrics requires; empty: the key in data_dir/metrics-key "
        "(made on first start), unless metrics_public.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve GET /metrics to anyone (it names every app, deployment and label).",
    )
    metrics_retention_days: int = Field(
        default=90, ge=0, description="Hourly metrics older than this are pruned; 0 keeps them forever."
    )
    audit_retention_days: int = Field(
        default=365, ge=0, description="Audit events older than this are pruned; 0 keeps them forever."
    )
    metrics_active_days: int = Field(
        default=30, ge=0, description="Devices silent this many days stop counting as active; 0: never."
    )
    server_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key file that signs update-check answers (freshness), the same on every host; "
        "empty: data_dir/server-key.pem, created on first start when the database is SQLite.",
    )
    server_key: SecretStr = Field(
        default=SecretStr(""),
        description="The server key's PEM text itself (from a secret manager), instead of server_key_file.",
    )
    temp_max_age_minutes: float = Field(
        default=60.0,
        ge=1.0,
        description="At start, temporary files (uploads, extracted bundles, partial blob writes) older "
        "than this are removed as leftovers of a crash; younger ones may belong to another worker.",
    )
    answer_ttl_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="How long a signed update-check answer stays valid; devices refuse it after that.",
    )
    webhook_timeout_seconds: float = Field(
        default=5.0,
        gt=0.0,
        le=60.0,
        description="The longest one webhook delivery try waits for the receiver (connecting, sending and "
        "its answer together); past it the try counts as failed and is retried later.",
    )
    shutdown_seconds: float = Field(
        default=10.0,
        ge=1.0,
        le=600.0,
        description="On SIGTERM, the longest the server takes to stop: in-flight requests drain, accepted "
        "device reports are written, background work stops; a worker still busy after that is killed.",
    )

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not (value.startswith(("http://", "https://")) and urlsplit(value).hostname):
            raise ValueError(f"{value!r} is not a URL: write it like https://ota.example.com")
        return value

    @field_validator("blob_url")
    @classmethod
    def _check_blob_url(cls, value: str) -> str:
        if value and not value.startswith(("file:///", "memory://", "s3://")):
            raise ValueError(f"{value!r}: use file:///absolute/folder, memory:// or s3://bucket/prefix")
        if value.startswith("s3://") and not urlsplit(value).netloc:
            raise ValueError(f"{value!r} names no bucket: write it like s3://bucket/prefix")
        return value

    @field_validator("download_url")
    @classmethod
    def _check_download_url(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not (value.startswith(("http://", "https://")) and urlsplit(value).hostname):
            raise ValueError(f"{value!r} is not a URL: write it like https://cdn.example.com/overair")
        return value

    @field_validator("s3_presign")
    @classmethod
    def _check_presign(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not str(info.data.get("blob_url", "")).startswith("s3://"):
            raise ValueError("presigned URLs need an S3 blob store: set OVERAIR_BLOB_URL=s3://bucket/prefix")
        if value and info.data.get("download_url"):
            raise ValueError("set either OVERAIR_DOWNLOAD_URL or OVERAIR_S3_PRESIGN, not both")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: str) -> str:
        HostPolicy.build(value)  # raises ValueError naming the entry that is not a host name
        return value

    def host_policy(self) -> HostPolicy:
        """Which ``Host`` names requests may address (see :mod:`overair.hosts`)."""
        return HostPolicy.build(self.allowed_hosts, self.public_url, self.host)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/overair.db``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'overair.db').resolve()}"

    def resolved_server_key_file(self) -> Path:
        """Where the server's online signing key lives."""
        return self.server_key_file or self.data_dir / "server-key.pem"

    def resolved_metrics_key_file(self) -> Path:
        """Where the generated metrics key lives (used when OVERAIR_METRICS_KEY is not set)."""
        return self.data_dir / "metrics-key"

    def resolved_temp_dir(self) -> Path:
        """The folder for the server's temporary files: ``<data_dir>/tmp``, never a shared system folder."""
        return (self.data_dir / "tmp").resolve()

    def resolved_blob_url(self) -> str:
        """The blob store URL, defaulting to ``file://<data_dir>/blobs``."""
        return self.blob_url or (self.data_dir / "blobs").resolve().as_uri()

    def blob_store(self) -> BlobStore:
        """The blob store these settings name (``ValueError`` for an unsupported URL)."""
        options = S3Options(
            self.s3_endpoint, self.s3_region, self.s3_access_key_id, self.s3_secret_access_key
        )
        return open_blob_store(self.resolved_blob_url(), options)


class SettingsError(ValueError):
    """Settings that cannot be used, with one line per wrong ``OVERAIR_*`` value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_settings(**overrides: object) -> Settings:
    """``Settings(**overrides)``, turning a validation failure into a :class:`SettingsError` that names each
    environment variable, what was wrong with it and what it should look like."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "OVERAIR_" + "_".join(str(part) for part in error["loc"]).upper()
            reason = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}={error.get('input')!r}: {reason}")
        raise SettingsError("The server's settings are wrong: " + "; ".join(lines) + ".") from None
