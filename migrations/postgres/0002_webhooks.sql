-- HelloJohn PostgreSQL schema, version 2: webhooks (events as a transactional outbox,
-- endpoints, deliveries). The same tables and columns as migrations/sqlite/0002_webhooks.sql.
-- Additive only. Scheduling times are Unix milliseconds (`*_ms`); other times Unix seconds.
-- Delivery ids are made by gen_random_uuid() (PostgreSQL 13 or later).

-- Every event, written in the transaction of the change that caused it.
CREATE TABLE webhook_events (
    id           uuid    NOT NULL,
    tenant_id    uuid    NOT NULL,
    type         text    NOT NULL,
    actor_id     uuid,
    actor_type   text,
    target_id    uuid,
    target_type  text,
    ip_address   text,
    user_agent   text,
    metadata     jsonb   NOT NULL DEFAULT '{}',
    result       text    NOT NULL,
    created_at   bigint  NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_events_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE
);

-- list_events (per tenant, newest first); also the foreign key to tenants.
CREATE INDEX webhook_events_tenant ON webhook_events (tenant_id, created_at);
-- prune_webhook_events: the oldest events.
CREATE INDEX webhook_events_created ON webhook_events (created_at);
-- Written only when an endpoint of the tenant subscribes to the event's type: the outbox, not
-- an audit log.

CREATE TABLE webhook_endpoints (
    id                uuid    NOT NULL,
    tenant_id         uuid    NOT NULL,
    url               text    NOT NULL,
    -- Event types; '*' matches every type.
    events            text[]  NOT NULL DEFAULT '{}',
    -- nonce || XChaCha20-Poly1305 ciphertext under the master key, the endpoint id as AAD.
    secret_encrypted  bytea   NOT NULL,
    created_at        bigint  NOT NULL,
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_endpoints_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE
);

-- The fan-out of every event looks up its tenant's endpoints.
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);

-- One row per (event, subscribed endpoint), written with the event.
CREATE TABLE webhook_deliveries (
    id                  uuid     NOT NULL,
    event_id            uuid     NOT NULL,
    endpoint_id         uuid     NOT NULL,
    tenant_id           uuid     NOT NULL,
    status              text     NOT NULL DEFAULT 'pending',
    attempts            integer  NOT NULL DEFAULT 0,
    generation          integer  NOT NULL DEFAULT 0,
    next_attempt_at_ms  bigint   NOT NULL,
    leased_until_ms     bigint,
    lease_id            uuid,
    last_attempt_at_ms  bigint,
    last_status_code    integer,
    last_error          text,
    delivered_at_ms     bigint,
    created_at          bigint   NOT NULL,
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'failed', 'delivered', 'exhausted')),
    CONSTRAINT webhook_deliveries_event_id_endpoint_id_key UNIQUE (event_id, endpoint_id),
    CONSTRAINT webhook_deliveries_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES webhook_events (id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id)
        REFERENCES webhook_endpoints (id) ON DELETE CASCADE
);

-- claim_webhook_deliveries and webhook_backlog: the open deliveries by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms)
    WHERE status IN ('pending', 'failed');
-- The foreign key to endpoints (deleting an endpoint deletes its deliveries).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);
-- hj webhook deliveries: newest first.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
