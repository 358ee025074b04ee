-- HelloJohn PostgreSQL schema, version 4: the writes of a sign-in as PL/pgSQL functions.
-- Additive only: older instances do not call them and keep working during a rolling update.
--
-- Why functions: the store sends unnamed statements (`query_typed`), which PostgreSQL parses and
-- plans on every execution, because named prepared statements break behind PgBouncer < 1.21 in
-- transaction mode. The statements inside a PL/pgSQL function are planned once per server
-- connection and the plans are cached there, whatever pools in front. On this project's 2-core
-- machine (pgbench, 4 clients, docs/scaling.md) the sign-in write (refresh family, token and the
-- outbox event) cost PostgreSQL about 480 us of CPU as pipelined statements and about 190 us as
-- one function call: CPU that a sign-in otherwise takes from the password hash.
--
-- Each function runs inside the caller's statement, so it is atomic with it: the change and its
-- event commit together or not at all (the transactional outbox).

-- The outbox: writes the event and one delivery per endpoint of its tenant subscribed to its type
-- (or to `*`), due at once; nothing when no endpoint subscribes (the outbox is not an audit log:
-- tenants without webhooks pay nothing). Always returns true, so callers can chain it.
CREATE FUNCTION hj_record_event(
    p_id uuid, p_tenant_id uuid, p_type text, p_actor_id uuid, p_actor_type text,
    p_target_id uuid, p_target_type text, p_ip_address text, p_user_agent text,
    p_metadata jsonb, p_result text, p_created_at bigint
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
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

-- A refresh token, with its family unless the family exists. Returns false, and writes nothing,
-- when the family exists and belongs to another user. Each statement takes its own snapshot
-- (READ COMMITTED), so a family inserted concurrently is seen by the check once the insert has
-- waited for it.
CREATE FUNCTION hj_insert_refresh_token(
    p_token_hash bytea, p_family_id uuid, p_user_id uuid, p_tenant_id uuid, p_client_id text,
    p_issued_at bigint, p_expires_at bigint
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refresh_families (id, user_id, tenant_id, client_id, created_at)
    VALUES (p_family_id, p_user_id, p_tenant_id, p_client_id, p_issued_at)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        PERFORM 1 FROM refresh_families WHERE id = p_family_id AND user_id = p_user_id;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;
    INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id, issued_at,
        expires_at)
    VALUES (p_token_hash, p_family_id, p_user_id, p_tenant_id, p_client_id, p_issued_at,
        p_expires_at);
    RETURN true;
END
$$;

-- A cookie session. Always returns true, so callers can chain it.
CREATE FUNCTION hj_insert_session(
    p_id_hash bytea, p_user_id uuid, p_tenant_id uuid, p_client_id text, p_created_at bigint,
    p_expires_at bigint
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, expires_at)
    VALUES (p_id_hash, p_user_id, p_tenant_id, p_client_id, p_created_at, p_expires_at);
    RETURN true;
END
$$;
