"""`ServerSettings`: one object per process, built at the entry point, never read at import time."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keyless.listen import ListenerLimits
from keyless.oauth.ratelimit import Budget
from keyless.server.client_address import Network, parse_networks

DOMAIN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEYLESS_", extra="ignore")

    data_dir: Path = Field(default=Path(".keyless"), description="directory made by `keyless init`")
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    database_url: str | None = Field(default=None, description="postgresql://… ; default: SQLite in data dir")
    public_url: str | None = Field(
        default=None,
        description="base URL clients use (every issuer's prefix); default: the data directory's server_url. "
        "Every replica must use the same one (docs/deployment.md)",
    )
    move_public_url: bool = Field(
        default=False, description="replace the public URL recorded in the database (a deliberate move)"
    )
    cache_ttl: float = Field(default=5.0, ge=0, le=300, description="seconds a replica may serve stale reads")
    signin_flush_interval: float = Field(default=0.5, gt=0, le=60)
    log_level: str = "info"
    access_log: bool = Field(default=False, description="one JSON line per HTTP request (method, route, status, "
                             "duration; never a token or secret)")
    # Failure throttling at the token endpoint: the model and its numbers are in docs/security.md.
    source_failure_burst: float = Field(default=30, gt=0, description="failed client auths per source before 429")
    source_failure_rate: float = Field(default=0.5, gt=0, description="per-source failure budget refill, per second")
    source_client_failure_burst: float | None = Field(
        default=None, gt=0, description="failed auths per (source, client_id) before 429; default: source burst / 3")
    source_client_failure_rate: float | None = Field(
        default=None, gt=0, description="per-(source, client_id) refill, per second; default: source rate / 5")
    client_failure_burst: float = Field(
        default=100, gt=0, description="failed auths per client_id before its attacking sources must wait")
    client_failure_rate: float = Field(default=2, gt=0, description="per-client failure budget refill, per second")
    vault_port: int = Field(default=8445, ge=-1, le=65535,
                            description="HTTPS port of the Key Vault-compatible vault API (-1: off)")
    vault_domain: str = Field(default="vault.localhost", pattern=DOMAIN,
                              description="vaults are also served as https://{vault}.{vault_domain}:{vault_port}")
    default_vault: str = Field(default="default", description="the vault served at https://HOST:{vault_port}/")
    key_rotation_interval: float = Field(
        default=0, ge=0, le=365 * 86400,
        description="rotate each tenant's signing key after it has signed this many seconds (0: never on schedule)",
    )
    key_rotation_check: float = Field(default=60, gt=0, le=3600, description="how often a replica looks")
    host_certificate_days: int = Field(default=7, ge=1, le=397, description="lifetime of agents' host certificates")
    federation_ca_bundle: Path | None = Field(
        default=None, description="extra CA certificates to trust when fetching external issuers' metadata"
    )
    allow_private_issuers: list[str] = Field(
        default_factory=list,
        description="host names or networks of external issuers exempt from the public-address rule (tests only)",
    )
    federation_key_refresh_interval: float = Field(
        default=60.0, ge=1, le=3600, description="at most one JWKS refresh per external issuer this often (E06)"
    )
    webhook_allow_private: list[str] = Field(
        default_factory=list,
        description="host names or networks webhook endpoints may use although private or loopback "
        "(an internal receiver the operator trusts, or tests); empty by default (catalog O01)",
    )
    webhook_ca_bundle: Path | None = Field(default=None, description="extra CA certificates to trust for webhooks")
    outbox_worker: bool = Field(default=True, description="deliver webhooks from this replica (any replica may; "
                                "turn it off to keep delivery on dedicated replicas)")
    notice_scan_interval: float = Field(default=300, gt=0, le=86400,
                                        description="seconds between scans for expiring and unused credentials")
    expiry_notice_days: list[float] = Field(default_factory=lambda: [30.0, 7.0, 1.0],
                                            description="credential.expiring is sent this many days before expiry")
    unused_notice_days: float = Field(default=90, ge=0, description="credential.unused after this many days "
                                      "without a sign-in (0: never)")
    agent_silent_minutes: float = Field(default=60, ge=0, description="agent.silent when an enrolled host's agent "
                                        "has not called the server for this many minutes (0: never)")
    reap_unused_days: float = Field(default=0, ge=0, description="deprecated (use the policy's reaping rule): "
                                    "disable applications' and identities' secrets and certificates unused this "
                                    "many days, where no policy sets reaping (0: off)")
    reap_delete_after_days: float = Field(default=0, ge=0, description="deprecated (use the policy's reaping "
                                          "rule): delete revoked secrets and certificates this many days after, "
                                          "where no policy sets reaping (0: off)")
    webhook_log_retention_days: float = Field(default=30, gt=0, description="delivered and failed webhook "
                                              "deliveries and their log are kept this many days")
    outbox_poll_interval: float = Field(default=2.0, gt=0, le=300,
                                        description="seconds between looks for due webhook deliveries")
    webhook_endpoint_concurrency: int = Field(default=2, ge=1, le=8, description="webhook sends to one endpoint "
                                              "at once, per replica (docs/notifications.md, 'Rate limits')")
    webhook_endpoint_rate: float = Field(default=5.0, gt=0, le=10_000, description="webhook sends per second to "
                                         "one endpoint, per replica, after the burst")
    webhook_endpoint_burst: float = Field(default=20.0, ge=1, le=100_000, description="webhook sends to one "
                                          "endpoint in a burst, per replica (the token bucket's size)")
    leak_report_keys: Path | None = Field(
        default=None, description="code hosts' leak-report signing keys (GitHub's secret-scanning key document); "
        "unset: POST /leaks/github is off. Replacing the file rotates the keys (docs/leaks.md)",
    )
    header_timeout: float = Field(default=10.0, gt=0, le=3600, description="seconds to send a request's head")
    body_timeout: float = Field(default=30.0, gt=0, le=3600, description="seconds to send a request's body")
    keep_alive_timeout: float = Field(default=5.0, gt=0, le=3600, description="idle seconds between requests")
    max_connections: int = Field(default=2000, ge=1, le=1_000_000, description="open connections, all sources")
    max_connections_per_source: int = Field(default=64, ge=1, le=1_000_000, description="from one address")
    max_idle_connections: int = Field(default=512, ge=1, le=1_000_000, description="idle keep-alive connections")
    shutdown_timeout: float = Field(default=5.0, gt=0, le=3600, description="on SIGTERM, for requests in flight")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or CIDRs of reverse proxies whose X-Forwarded-For/Forwarded header names the "
        "client (docs/policies.md, 'Trusted proxies'); empty: the headers are ignored and the peer is the client",
    )
    insecure_world_readable_files: bool = Field(
        default=False, description="skip the 0600 check on key files (never in production)"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    def proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    def listener_limits(self) -> ListenerLimits:
        return ListenerLimits(
            header_timeout=self.header_timeout, body_timeout=self.body_timeout,
            keep_alive_timeout=self.keep_alive_timeout, max_connections=self.max_connections,
            max_per_source=self.max_connections_per_source, max_idle=self.max_idle_connections,
            shutdown_timeout=self.shutdown_timeout,
        )

    @property
    def vault_enabled(self) -> bool:
        return self.vault_port >= 0

    def vault_resource(self) -> str:
        """The vault's token audience, announced in its challenge: a parent domain of every vault's host
        name with the same port, so `azure-keyvault-secrets` accepts it (compat §5.2)."""
        return f"https://{self.vault_domain}{self._vault_port_suffix}"

    def vault_url(self, name: str) -> str:
        return f"https://{name}.{self.vault_domain}{self._vault_port_suffix}"

    @property
    def _vault_port_suffix(self) -> str:
        return "" if self.vault_port == 443 else f":{self.vault_port}"

    @property
    def url_host(self) -> str:
        """The listening host as it appears in a URL (a wildcard address becomes localhost)."""
        host = self.host
        if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - only building a URL, not binding
            host = "localhost"
        return f"[{host}]" if ":" in host else host

    def base_url(self, recorded: str | None = None, bound_port: int | None = None) -> str:
        """The public URL this process asks to announce: the explicit setting, else the one the data
        directory recorded at `keyless init` (so replicas sharing a data directory agree by default),
        else the listening address. `keyless.store.installation` then checks it against the database."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if recorded:
            return recorded.rstrip("/")
        return f"https://{self.url_host}:{bound_port if bound_port is not None else self.port}"

    def source_client_budget(self) -> Budget:
        """Per (source, client_id): a third of the per-source burst at a fifth of its refill unless set
        (10 failures, then one per 10 s, with the defaults), so raising the source budget (as tests do)
        raises it too."""
        return Budget(self.source_client_failure_burst or self.source_failure_burst / 3,
                      self.source_client_failure_rate or self.source_failure_rate / 5)
