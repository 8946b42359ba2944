-- webhook install script, part 3.1: transports, a tenant's HTTP destinations
-- (create, update, delete, list).  The conventions of 29_validators.sql hold.

-- Store a transport that create_transport() or update_transport() built,
-- over old (the row it replaces, locked; NULL for a new one): checked,
-- written, and returned as stored.  What the two share: the checks, a
-- name that is the tenant's only one, the errors and the TLS warning.
CREATE OR REPLACE FUNCTION webhook_internal.store_transport(t webhook.transport, old webhook.transport)
    RETURNS webhook.transport
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    taken_hint text := CASE WHEN old.id IS NULL
        THEN 'Choose another name, or change the existing transport with webhook.update_transport().'
        ELSE 'Choose another name.' END;
BEGIN
    t := webhook_internal.check_transport(t);
    PERFORM webhook_internal.check_manages(t.tenant);
    IF old.id IS NOT NULL THEN
        PERFORM webhook_internal.check_transport_limits(t, old);
    END IF;

    IF (t.tenant, t.name) IS DISTINCT FROM (old.tenant, old.name)
       AND EXISTS (SELECT 1 FROM webhook.transport x
                    WHERE x.tenant = t.tenant AND x.name = t.name) THEN
        RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
            USING ERRCODE = 'duplicate_object', HINT = taken_hint;
    END IF;

    BEGIN
        IF old.id IS NULL THEN
            INSERT INTO webhook.transport AS x
                   (tenant, name, base_url, headers, auth, query_key, connect_timeout,
                    timeout, tls_verify, ca_file, client_cert_file, client_key_file,
                    client_key_password, max_in_flight, max_per_second)
            VALUES (t.tenant, t.name, t.base_url, t.headers, t.auth, t.query_key,
                    t.connect_timeout, t.timeout, t.tls_verify, t.ca_file,
                    t.client_cert_file, t.client_key_file, t.client_key_password,
                    t.max_in_flight, t.max_per_second)
            RETURNING x.* INTO t;
        ELSE
            UPDATE webhook.transport x
               SET tenant = t.tenant, name = t.name, base_url = t.base_url,
                   headers = t.headers, auth = t.auth, query_key = t.query_key,
                   connect_timeout = t.connect_timeout, timeout = t.timeout,
                   tls_verify = t.tls_verify, ca_file = t.ca_file,
                   client_cert_file = t.client_cert_file,
                   client_key_file = t.client_key_file,
                   client_key_password = t.client_key_password,
                   max_in_flight = t.max_in_flight, max_per_second = t.max_per_second,
                   updated_at = now()
             WHERE x.id = old.id
            RETURNING x.* INTO t;
        END IF;
    EXCEPTION
        WHEN unique_violation THEN
            -- a concurrent create or update won the race
            RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
                USING ERRCODE = 'duplicate_object', HINT = taken_hint;
        WHEN integrity_constraint_violation THEN
            -- never let the failing row (and its credentials) into a message
            RAISE EXCEPTION 'invalid transport'
                USING ERRCODE = 'invalid_parameter_value';
    END;

    IF NOT t.tls_verify AND coalesce(old.tls_verify, true) THEN
        RAISE WARNING 'TLS verification is disabled for transport "%"', t.name
            USING HINT = 'Any server can impersonate the receiver; give the receiver''s CA with ca_file instead.';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION webhook_internal.store_transport(webhook.transport, webhook.transport) IS
    'check and write a transport built by create_transport or update_transport (old: the row it replaces, or NULL)';
REVOKE EXECUTE ON FUNCTION webhook_internal.store_transport(webhook.transport, webhook.transport) FROM PUBLIC;

CREATE OR REPLACE FUNCTION webhook.create_transport(
        name text,
        base_url text,
        tenant text DEFAULT 'default',
        headers jsonb DEFAULT '{}',
        auth jsonb DEFAULT NULL,
        query_key text DEFAULT NULL,
        connect_timeout interval DEFAULT '30 s',
        timeout interval DEFAULT '30 s',
        tls_verify boolean DEFAULT true,
        ca_file text DEFAULT NULL,
        client_cert_file text DEFAULT NULL,
        client_key_file text DEFAULT NULL,
        client_key_password text DEFAULT NULL,
        max_in_flight integer DEFAULT 16,
        max_per_second double precision DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t webhook.transport;
BEGIN
    t.tenant := webhook_internal.check_tenant(tenant);
    t.name := name;
    t.base_url := base_url;
    t.headers := headers;
    t.auth := auth;
    t.query_key := query_key;
    t.connect_timeout := connect_timeout;
    t.timeout := timeout;
    t.tls_verify := tls_verify;
    t.ca_file := ca_file;
    t.client_cert_file := client_cert_file;
    t.client_key_file := client_key_file;
    t.client_key_password := client_key_password;
    t.max_in_flight := max_in_flight;
    t.max_per_second := max_per_second;
    RETURN (webhook_internal.store_transport(t, NULL)).id;
END
$$;
COMMENT ON FUNCTION webhook.create_transport(text, text, text, jsonb, jsonb, text, interval,
                                             interval, boolean, text, text, text, text, integer,
                                             double precision) IS
    'create an HTTP destination for a tenant; returns its id';

CREATE OR REPLACE FUNCTION webhook.update_transport(
        id bigint,
        name text DEFAULT NULL,
        base_url text DEFAULT NULL,
        tenant text DEFAULT NULL,
        headers jsonb DEFAULT NULL,
        auth jsonb DEFAULT NULL,
        query_key text DEFAULT NULL,
        connect_timeout interval DEFAULT NULL,
        timeout interval DEFAULT NULL,
        tls_verify boolean DEFAULT NULL,
        ca_file text DEFAULT NULL,
        client_cert_file text DEFAULT NULL,
        client_key_file text DEFAULT NULL,
        client_key_password text DEFAULT NULL,
        max_in_flight integer DEFAULT NULL,
        max_per_second double precision DEFAULT NULL)
    RETURNS webhook.transport_info
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old webhook.transport;
    t webhook.transport;
BEGIN
    PERFORM webhook_internal.not_null(id, 'id');
    -- another tenant's row is neither locked nor waited for
    SELECT * INTO old FROM webhook.transport x
     WHERE x.id = update_transport.id AND webhook_internal.manages(x.tenant)
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM webhook_internal.does_not_exist('transport', id);
    END IF;

    -- NULL keeps a value; '' unsets an optional text, {"type":"none"} the auth
    t := old;
    t.name := coalesce(name, old.name);
    t.base_url := coalesce(base_url, old.base_url);
    t.tenant := CASE WHEN tenant IS NULL THEN old.tenant ELSE webhook_internal.check_tenant(tenant) END;
    t.headers := coalesce(headers, old.headers);
    t.auth := CASE WHEN auth IS NULL THEN old.auth ELSE auth END;
    t.query_key := coalesce(query_key, old.query_key);
    t.connect_timeout := coalesce(connect_timeout, old.connect_timeout);
    t.timeout := coalesce(timeout, old.timeout);
    t.tls_verify := coalesce(tls_verify, old.tls_verify);
    t.ca_file := coalesce(ca_file, old.ca_file);
    t.client_cert_file := coalesce(client_cert_file, old.client_cert_file);
    t.client_key_file := coalesce(client_key_file, old.client_key_file);
    t.client_key_password := coalesce(client_key_password, old.client_key_password);
    t.max_in_flight := coalesce(max_in_flight, old.max_in_flight);
    t.max_per_second := CASE WHEN max_per_second = 0 THEN NULL
                             ELSE coalesce(max_per_second, old.max_per_second) END;
    RETURN webhook_internal.transport_info(webhook_internal.store_transport(t, old));
END
$$;
COMMENT ON FUNCTION webhook.update_transport(bigint, text, text, text, jsonb, jsonb, text,
                                             interval, interval, boolean, text, text, text,
                                             text, integer, double precision) IS
    'change a transport: NULL arguments keep their value, '''' unsets an optional text, auth => ''{"type":"none"}'' removes credentials, max_per_second => 0 the rate limit; returns the transport as webhook.transports() shows it';

CREATE OR REPLACE FUNCTION webhook.delete_transport(id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.not_null(id, 'id');
    DELETE FROM webhook.transport x
     WHERE x.id = delete_transport.id AND webhook_internal.manages(x.tenant);
    IF NOT FOUND THEN
        PERFORM webhook_internal.does_not_exist('transport', id);
    END IF;
END
$$;
COMMENT ON FUNCTION webhook.delete_transport(bigint) IS
    'delete a transport with its hooks and their deliveries';

CREATE OR REPLACE FUNCTION webhook.transports(
        tenant text DEFAULT NULL,
        page integer DEFAULT 1,
        page_size integer DEFAULT 50,
        sort_by text DEFAULT 'created_at',
        sort_dir text DEFAULT 'ASC')
    RETURNS SETOF webhook.transport_info
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dir text;
BEGIN
    dir := webhook_internal.check_paging(page, page_size, sort_by, sort_dir,
                                 '{id,tenant,name,base_url,connect_timeout,timeout,tls_verify,max_in_flight,max_per_second,created_at,updated_at}', tenant);
    RETURN QUERY EXECUTE format(
        'SELECT (webhook_internal.transport_info(x)).*
           FROM webhook.transport x
          WHERE ($1 IS NULL OR x.tenant = $1)
            AND ($4::text[] IS NULL OR x.tenant = ANY ($4))
          ORDER BY x.%I %s, x.id %s
          LIMIT $2 OFFSET $3', sort_by, dir, dir)
        USING tenant, page_size, (page - 1)::bigint * page_size,
              webhook_internal.tenants_of(webhook_internal.caller());
END
$$;
COMMENT ON FUNCTION webhook.transports(text, integer, integer, text, text) IS
    'list transports, one page at a time, credentials masked';
