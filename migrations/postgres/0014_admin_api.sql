-- HelloJohn PostgreSQL schema, version 14: the admin API's API keys and the audit log.
-- The same tables as migrations/sqlite/0014_admin_api.sql. Additive only: a release before this
-- one neither reads nor writes these tables; the replaced hj_record_event keeps its signature
-- and its behaviour, and adds the audit row, so an older release running on this schema
-- audits its security events too.

-- API keys. The token is 32 random bytes shown once; only its SHA-256 is kept. `scope` is
-- `admin`, `readonly` or `tenant:{slug}`, read by the engine on use (an unknown one grants
-- nothing). Times are Unix seconds; `last_used_at` is refreshed at most once a minute.
CREATE TABLE api_keys (
    id              uuid    NOT NULL,
    name            text    NOT NULL,
    key_prefix      text    NOT NULL,
    key_hash        bytea   NOT NULL,
    scope           text    NOT NULL,
    created_by      text    NOT NULL,
    created_at      bigint  NOT NULL,
    last_used_at    bigint,
    expires_at      bigint,
    revoked_at      bigint,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);

-- The audit log: every admin action and every security event, written in the transaction of
-- the change it records. No foreign keys: an entry outlives the tenant, user or key it names.
-- `tenant_id` NULL: a global action (API keys, admins, the tenant list).
CREATE TABLE audit_log (
    id              uuid    NOT NULL,
    tenant_id       uuid,
    action          text    NOT NULL,
    actor_type      text    NOT NULL,
    actor_id        text,
    actor_name      text,
    target_type     text,
    target_id       text,
    ip_address      text,
    user_agent      text,
    request_id      text,
    metadata        jsonb   NOT NULL DEFAULT '{}'::jsonb,
    result          text    NOT NULL,
    created_at      bigint  NOT NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id)
);
-- Newest first, all tenants or one, keyset-paged on (created_at, id).
CREATE INDEX audit_log_time ON audit_log (created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, created_at DESC, id DESC);

-- Every event is also an audit entry, whether or not a webhook endpoint subscribes to it. The
-- request id rides in the event's metadata (`request_id`).
CREATE OR REPLACE FUNCTION hj_record_event(
    p_id uuid, p_tenant_id uuid, p_type text, p_actor_id uuid, p_actor_type text,
    p_target_id uuid, p_target_type text, p_ip_address text, p_user_agent text,
    p_metadata jsonb, p_result text, p_created_at bigint
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (id, tenant_id, action, actor_type, actor_id, target_type, target_id,
        ip_address, user_agent, request_id, metadata, result, created_at)
    VALUES (p_id, p_tenant_id, p_type, COALESCE(p_actor_type, 'system'), p_actor_id::text,
        p_target_type, p_target_id::text, p_ip_address, p_user_agent,
        p_metadata->>'request_id', COALESCE(p_metadata, '{}'::jsonb), p_result, p_created_at)
    ON CONFLICT (id) DO NOTHING;
    WITH targets AS (
        SELECT e.id FROM webhook_endpoints e
        WHERE e.tenant_id = p_tenant_id AND (p_type = ANY (e.events) OR '*' = ANY (e.events))
    ), ev AS (
        INSERT INTO webhook_events (id, tenant_id, type, actor_id, actor_type, target_id,
            target_type, ip_address, user_agent, metadata, result, created_at)
        SELECT p_id, p_tenant_id, p_type, p_actor_id, p_actor_type, p_target_id, p_target_type,
            p_ip_address, p_user_agent, p_metadata, p_result, p_created_at
        WHERE EXISTS (SELECT 1 FROM targets)
        RETURNING id, tenant_id, created_at
    )
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id, status, attempts,
        generation, next_attempt_at_ms, created_at)
    SELECT gen_random_uuid(), ev.id, t.id, ev.tenant_id, 'pending', 0, 0,
        ev.created_at * 1000, ev.created_at
    FROM ev CROSS JOIN targets t;
    RETURN true;
END
$$;
