-- HelloJohn SQLite schema, version 2: webhooks (events as a transactional outbox, endpoints,
-- deliveries). Additive only. Scheduling times are Unix milliseconds (`*_ms`); other times
-- Unix seconds, as in version 1.

-- Every event, written in the transaction of the change that caused it.
CREATE TABLE webhook_events (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type         TEXT    NOT NULL,
    actor_id     TEXT,
    actor_type   TEXT,
    target_id    TEXT,
    target_type  TEXT,
    ip_address   TEXT,
    user_agent   TEXT,
    metadata     TEXT    NOT NULL DEFAULT '{}',
    result       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- list_events (per tenant, newest first); also the foreign key to tenants.
CREATE INDEX webhook_events_tenant ON webhook_events (tenant_id, created_at);
-- prune_webhook_events: the oldest events.
CREATE INDEX webhook_events_created ON webhook_events (created_at);
-- Written only when an endpoint of the tenant subscribes to the event's type: the outbox, not
-- an audit log.

CREATE TABLE webhook_endpoints (
    id                TEXT    NOT NULL PRIMARY KEY,
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url               TEXT    NOT NULL,
    -- JSON array of event types; "*" matches every type.
    events            TEXT    NOT NULL DEFAULT '[]',
    -- nonce || XChaCha20-Poly1305 ciphertext under the master key, the endpoint id as AAD.
    secret_encrypted  BLOB    NOT NULL,
    created_at        INTEGER NOT NULL
) STRICT;

-- The fan-out of every event looks up its tenant's endpoints.
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);

-- One row per (event, subscribed endpoint), written with the event.
CREATE TABLE webhook_deliveries (
    id                  TEXT    NOT NULL PRIMARY KEY,
    event_id            TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id         TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    tenant_id           TEXT    NOT NULL,
    status              TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'failed', 'delivered', 'exhausted')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    generation          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  INTEGER NOT NULL,
    leased_until_ms     INTEGER,
    lease_id            TEXT,
    last_attempt_at_ms  INTEGER,
    last_status_code    INTEGER,
    last_error          TEXT,
    delivered_at_ms     INTEGER,
    created_at          INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
) STRICT;

-- claim_webhook_deliveries and webhook_backlog: the open deliveries by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms)
    WHERE status IN ('pending', 'failed');
-- The foreign key to endpoints (deleting an endpoint deletes its deliveries).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);
-- hj webhook deliveries: newest first.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
