"""netdash settings: everything that differs between machines comes from the environment.

Why: the same code runs as a one-machine demo (SQLite, local Redis), in CI (own Redis port, own
kernel-name prefix) and on several network nodes (PostgreSQL, shared Redis), without edits.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("NETDASH_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and _env_bool("NETDASH_PRODUCTION", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # Development and tests only: a stable per-checkout key, never a shared constant.
    _key_file = VAR_DIR / "secret_key"
    try:
        SECRET_KEY = _key_file.read_text().strip()
    except FileNotFoundError:
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = secrets.token_urlsafe(50)
        _key_file.write_text(SECRET_KEY)
        _key_file.chmod(0o600)

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "django_rq",
    "channels",
    "tenants",
    "portal",
    "api",
    "live",
    "teach",
    "bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "netdash.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "netdash.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, lease watcher) write at once: wait for the lock instead of failing,
    # and take the write lock at BEGIN so read-then-write transactions cannot deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        # WAL with synchronous=NORMAL: a commit no longer waits for fsync (the WAL is synced at checkpoints), which
        # is most of a job's database time; a power cut can lose the last commits, which reconcile re-derives.
        {"timeout": 30, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # A file, not memory: the test suite's worker, agent and daphne processes must see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Redis, RQ, Channels -------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# This host's name as a network node. Each node runs one agent (RQ worker) on its own queue; networks
# are scheduled to a node and their jobs go to that node's queue.
NETDASH_NODE = os.environ.get("NETDASH_NODE", socket.gethostname().split(".")[0] or "node")
if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", NETDASH_NODE):
    raise ImproperlyConfigured(
        f"NETDASH_NODE={NETDASH_NODE!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
        "digit (it names the node's queue and its state directory)"
    )
NETDASH_AGENT_QUEUE = f"agent-{NETDASH_NODE}"
# Nodes: each agent registers its Node row and heartbeats every NETDASH_NODE_HEARTBEAT_SECONDS; a node whose
# heartbeat is older than NETDASH_NODE_DEAD_SECONDS is not scheduled to. NETDASH_NODE_VTEP is this node's VXLAN
# tunnel endpoint on the underlay (unset: no overlay).
NETDASH_NODE_HEARTBEAT_SECONDS = float(os.environ.get("NETDASH_NODE_HEARTBEAT_SECONDS", "5"))
NETDASH_NODE_DEAD_SECONDS = float(os.environ.get("NETDASH_NODE_DEAD_SECONDS", "30"))
NETDASH_NODE_VTEP = os.environ.get("NETDASH_NODE_VTEP") or None
NETDASH_NODE_ROLES = os.environ.get("NETDASH_NODE_ROLES", "dhcp,compute")
# The underlay VXLAN runs over: "simulated" (default: the node's own namespace on a veth into the project's fabric
# namespace, what tests, the demo and the bench use) or "host" (a deployment: the host's interface
# NETDASH_UNDERLAY_DEVICE, which already holds NETDASH_NODE_VTEP). See deploy/README.md "Adding a real node".
NETDASH_UNDERLAY = os.environ.get("NETDASH_UNDERLAY", "simulated")
NETDASH_UNDERLAY_DEVICE = os.environ.get("NETDASH_UNDERLAY_DEVICE") or None
if NETDASH_UNDERLAY not in ("simulated", "host"):
    raise ImproperlyConfigured(f"NETDASH_UNDERLAY must be 'simulated' or 'host', not {NETDASH_UNDERLAY!r}")
if NETDASH_UNDERLAY == "host":
    # Tests, CI and the demo must never put a VTEP socket on this machine's own interfaces (the safety rule).
    if os.environ.get("CI") or os.environ.get("NETDASH_DEMO") or "pytest" in sys.modules:
        raise ImproperlyConfigured("NETDASH_UNDERLAY=host is for deployments only: refused under CI, tests and the "
                                   "demo, which use the simulated underlay")
    if NETDASH_NODE_VTEP is None or NETDASH_UNDERLAY_DEVICE is None:
        raise ImproperlyConfigured("NETDASH_UNDERLAY=host needs NETDASH_UNDERLAY_DEVICE (the host interface) and "
                                   "NETDASH_NODE_VTEP (an address already on it)")
    # (The device name itself is checked where the agent starts: tenants.hostspecs.check_underlay.)
# HA DHCP: each network gets this many DHCP servers on distinct live dhcp nodes (fewer if there are fewer nodes).
NETDASH_DHCP_SERVERS_PER_NETWORK = int(os.environ.get("NETDASH_DHCP_SERVERS_PER_NETWORK", "2"))
if NETDASH_DHCP_SERVERS_PER_NETWORK < 1:
    raise ImproperlyConfigured("NETDASH_DHCP_SERVERS_PER_NETWORK must be at least 1")

RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
    NETDASH_AGENT_QUEUE: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
}
RQ = {"COMMIT_MODE": "on_db_commit"}

# Largest live-websocket message the consumers send: a bigger snapshot is split into parts (``live.protocol``).
# daphne (autobahn) refuses to send anything over its 1 MiB payload limit; half of it leaves room for growth.
NETDASH_LIVE_FRAME_BYTES = int(os.environ.get("NETDASH_LIVE_FRAME_BYTES", str(512 * 1024)))
if not 4096 <= NETDASH_LIVE_FRAME_BYTES <= 1024 * 1024:
    raise ImproperlyConfigured("NETDASH_LIVE_FRAME_BYTES must be between 4096 and 1048576 (daphne's limit)")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults socket_timeout to 5 s, the same as channels_redis's blocking BZPOPMIN (5 s):
            # every consumer idle for 5 s died with "Timeout reading from redis". Read timeout must exceed it.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_keepalive": True}],
            "prefix": os.environ.get("NETDASH_CHANNEL_PREFIX", "netdash"),
        },
    }
}

# --- Host (kernel) side ----------------------------------------------------------------------------
# Every namespace and device name carries this prefix, so tests, benchmarks and several nodes never collide.
NETDASH_PREFIX = os.environ.get("NETDASH_PREFIX", "nd-")
# Prefix of the simulated fabric joining the nodes' underlays; simulated nodes on one machine each have their own
# NETDASH_PREFIX and share this one (it defaults to NETDASH_PREFIX: one node, or nodes without VTEPs).
NETDASH_FABRIC_PREFIX = os.environ.get("NETDASH_FABRIC_PREFIX") or NETDASH_PREFIX
if not re.fullmatch(r"[a-z][a-z0-9]{0,4}-?", NETDASH_PREFIX):
    raise ImproperlyConfigured(
        f"NETDASH_PREFIX={NETDASH_PREFIX!r} must be 1-6 characters: a lowercase letter, then letters/digits, "
        "optionally ending in '-' (device names must fit in 15 bytes)"
    )
NETDASH_STATE_DIR = Path(os.environ.get("NETDASH_STATE_DIR", VAR_DIR / "state"))
NETDASH_DNSMASQ = os.environ.get("NETDASH_DNSMASQ", "/usr/sbin/dnsmasq")
NETDASH_BUSYBOX = os.environ.get("NETDASH_BUSYBOX", "/usr/bin/busybox")
# Instances skip IPv6 router-solicitation delay and DAD (SLAAC in ms instead of ~3.5 s); off = realistic.
NETDASH_FAST_IPV6 = os.environ.get("NETDASH_FAST_IPV6", "") == "1"
# The IPv6 subnet pool's ULA /48 (fdXX:XXXX:XXXX::/48); empty: a random one is drawn once and stored.
NETDASH_ULA_PREFIX = os.environ.get("NETDASH_ULA_PREFIX", "")
# Locally administered unicast OUI for generated instance MACs (the same one Neutron uses by default).
NETDASH_MAC_BASE = os.environ.get("NETDASH_MAC_BASE", "fa:16:3e")
NETDASH_RECONCILE_SECONDS = int(os.environ.get("NETDASH_RECONCILE_SECONDS", "60"))
# The interactive namespace shell (teaching) is off unless explicitly enabled.
NETDASH_SHELL_ENABLED = _env_bool("NETDASH_SHELL_ENABLED", False)
# Such a shell is killed by the agent after this many seconds.
NETDASH_SHELL_SECONDS = int(os.environ.get("NETDASH_SHELL_SECONDS", "600"))
# Operators' endpoints (netdash/ops_views.py): a token for /metrics scraped from another host (empty: loopback
# only), and the loopback port of each agent's own /metrics (0: not served).
NETDASH_METRICS_TOKEN = os.environ.get("NETDASH_METRICS_TOKEN", "")
NETDASH_AGENT_METRICS_PORT = int(os.environ.get("NETDASH_AGENT_METRICS_PORT", "0"))
# A learner's lab (teach.Lab) is torn down this many minutes after it started (a class may set its own).
NETDASH_LAB_MINUTES = int(os.environ.get("NETDASH_LAB_MINUTES", "120"))
# Jobs the agent enqueues for itself every so many seconds (dotted path → interval): tenants core stays unaware
# of the apps above it.
NETDASH_AGENT_PERIODIC_JOBS = {"teach.jobs.lab_sweep": int(os.environ.get("NETDASH_LAB_SWEEP_SECONDS", "30"))}

# --- Rate limits (tenants.ratelimit: DRF throttles on the Redis cache; not enforced while Redis is down) -----
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
# Sign-in attempts per client IP and user name, and API writes (POST/PUT/PATCH/DELETE) per user. "" = no limit.
NETDASH_LOGIN_RATE = os.environ.get("NETDASH_LOGIN_RATE", "10/m")
NETDASH_API_WRITE_RATE = os.environ.get("NETDASH_API_WRITE_RATE", "120/m")

# --- REST API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "netdash API",
    "DESCRIPTION": "Self-service virtual networks: each network is a Linux namespace with its own dnsmasq.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # ipv6_ra_mode and ipv6_address_mode share Neutron's three values: one enum in the schema, not two names.
    # Node.state and Lease.state are both "state": each gets its own name, not a hashed one (drf_spectacular.W001).
    "ENUM_NAME_OVERRIDES": {"Ipv6ModeEnum": "tenants.models.IPV6_MODE_CHOICES",
                            "NodeStateEnum": "tenants.choices.NodeState"},
}

# --- Production hardening (manage.py check --deploy with NETDASH_PRODUCTION=1) ----------------------
if _env_bool("NETDASH_PRODUCTION", False):
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Load balancers, systemd and Prometheus ask 127.0.0.1:8000 directly, over plain HTTP (netdash/ops_views.py).
    SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
