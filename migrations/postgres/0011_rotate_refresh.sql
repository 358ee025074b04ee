-- HelloJohn PostgreSQL schema, version 11: a refresh-token rotation in one statement.
-- Additive only: older instances do not call it and keep working during a rolling update.
--
-- `hj_rotate_refresh` is `Store::rotate_refresh`: the decision of storage/src/rotation.rs, taken
-- in the same order as `rotate_refresh_token` takes it in a transaction of several statements,
-- but inside one statement: one round trip, atomic without BEGIN/COMMIT, and its plans cached
-- per server connection whatever pools in front (0004_hot_writes.sql says why functions).
--
--   1. Lock the token's family (FOR NO KEY UPDATE), as every change to a family's state does
--      first (storage/src/postgres/refresh.rs): concurrent rotations of one token queue here.
--   2. Read the token as it stands. The statements of a VOLATILE function each take a fresh
--      snapshot under READ COMMITTED, so this read sees what the previous holder of the lock
--      committed.
--   3. Unknown, of another tenant or of another client: 'not_found'. Family revoked: 'revoked'.
--      Already rotated: revoke the family and record the reuse event, 'reused' (even when it
--      has expired since). Expired: 'expired'. Nothing is written but for 'reused'.
--   4. Otherwise mark it rotated with a conditional update (the update, not the read, decides:
--      losing it is a reuse) and insert the successor in the old token's family, user, tenant
--      and client: 'rotated', with the user's columns and the family's scopes.
--
-- The reuse event's 12 columns come as the last arguments, in the order of hj_record_event
-- (none when p_ev_id is NULL); as `EventDraft::for_token` does, the tenant, the actor and the
-- target default to the token's tenant and user, and the metadata gains `family_id` and
-- `client_id` unless set.
--
-- One row, always: o_outcome, then o_family_id and o_user_id ('reused' and 'rotated'), o_scopes
-- and the user ('rotated'), NULL otherwise. The user columns are named as in `users` so that the
-- caller reads them with its usual column list (storage/src/postgres/user_row.rs).
CREATE FUNCTION hj_rotate_refresh(
    p_old_hash bytea, p_tenant_id uuid, p_client_id text, p_new_hash bytea,
    p_issued_at bigint, p_expires_at bigint, p_now bigint,
    p_ev_id uuid DEFAULT NULL, p_ev_tenant_id uuid DEFAULT NULL, p_ev_type text DEFAULT NULL,
    p_ev_actor_id uuid DEFAULT NULL, p_ev_actor_type text DEFAULT NULL,
    p_ev_target_id uuid DEFAULT NULL, p_ev_target_type text DEFAULT NULL,
    p_ev_ip_address text DEFAULT NULL, p_ev_user_agent text DEFAULT NULL,
    p_ev_metadata jsonb DEFAULT NULL, p_ev_result text DEFAULT NULL,
    p_ev_created_at bigint DEFAULT NULL
) RETURNS TABLE (
    o_outcome text, o_family_id uuid, o_user_id uuid, o_scopes text[],
    id uuid, tenant_id uuid, email text, email_verified boolean, name text, custom_fields jsonb,
    disabled boolean, created_at bigint, app_metadata jsonb, mfa_enabled boolean
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_family  uuid;
    v_user    uuid;
    v_tenant  uuid;
    v_client  text;
    v_expires bigint;
    v_rotated bigint;
    v_revoked bigint;
    v_scopes  text[];
BEGIN
    PERFORM 1 FROM refresh_families f
    WHERE f.id = (SELECT t.family_id FROM refresh_tokens t WHERE t.token_hash = p_old_hash)
    FOR NO KEY UPDATE;

    SELECT t.family_id, t.user_id, t.tenant_id, t.client_id, t.expires_at, t.rotated_at,
        f.revoked_at, f.scopes
    INTO v_family, v_user, v_tenant, v_client, v_expires, v_rotated, v_revoked, v_scopes
    FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
    WHERE t.token_hash = p_old_hash;
    IF NOT FOUND OR v_tenant <> p_tenant_id OR v_client <> p_client_id THEN
        o_outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_revoked IS NOT NULL THEN
        o_outcome := 'revoked';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_rotated IS NULL THEN
        IF v_expires <= p_now THEN
            o_outcome := 'expired';
            RETURN NEXT;
            RETURN;
        END IF;
        UPDATE refresh_tokens t SET rotated_at = p_now
        WHERE t.token_hash = p_old_hash AND t.rotated_at IS NULL;
        IF FOUND THEN
            INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id,
                issued_at, expires_at)
            VALUES (p_new_hash, v_family, v_user, v_tenant, v_client, p_issued_at, p_expires_at);
            SELECT u.id, u.tenant_id, u.email, u.email_verified, u.name, u.custom_fields,
                u.disabled, u.created_at, u.app_metadata, u.mfa_enabled
            INTO id, tenant_id, email, email_verified, name, custom_fields, disabled,
                created_at, app_metadata, mfa_enabled
            FROM users u WHERE u.id = v_user;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'refresh token of a missing user %', v_user;
            END IF;
            o_outcome := 'rotated';
            o_family_id := v_family;
            o_user_id := v_user;
            o_scopes := v_scopes;
            RETURN NEXT;
            RETURN;
        END IF;
        -- Rotated by someone else in between: cannot happen under the family lock, but the
        -- conditional update is what decides, and the loser is a reuse.
    END IF;

    -- A second use of a spent token: it leaked. The whole family goes, with the event.
    UPDATE refresh_families f SET revoked_at = p_now
    WHERE f.id = v_family AND f.revoked_at IS NULL;
    IF p_ev_id IS NOT NULL THEN
        PERFORM hj_record_event(
            p_ev_id, coalesce(p_ev_tenant_id, v_tenant), p_ev_type,
            coalesce(p_ev_actor_id, v_user),
            CASE WHEN p_ev_actor_id IS NULL THEN coalesce(p_ev_actor_type, 'user')
                ELSE p_ev_actor_type END,
            coalesce(p_ev_target_id, v_user),
            CASE WHEN p_ev_target_id IS NULL THEN coalesce(p_ev_target_type, 'user')
                ELSE p_ev_target_type END,
            p_ev_ip_address, p_ev_user_agent,
            jsonb_build_object('family_id', v_family::text, 'client_id', v_client)
                || coalesce(p_ev_metadata, '{}'::jsonb),
            p_ev_result, p_ev_created_at);
    END IF;
    o_outcome := 'reused';
    o_family_id := v_family;
    o_user_id := v_user;
    RETURN NEXT;
END
$$;
