-- webhook install script, the catalog (src/sql/catalog, part 1): types.
--
-- The install script is the catalog, the state (these files: types,
-- tables, their constraints and indexes), and then the code (src/sql/code:
-- functions, views, triggers, policies and privileges, each written so
-- that running it again replaces it).  An upgrade script is a short
-- hand-written migration of the state from the release before
-- (src/sql/migrations) and then the same code (sql/build-script).  A
-- change here is a change of state: it goes into the next migration too,
-- and test/e2e/test_upgrade.py checks that an updated catalog is the one
-- a fresh install makes.

\echo Use "CREATE EXTENSION webhook" to load this file. \quit

-- The functions the API, the triggers, the policies and the worker use
-- among themselves live in a schema of their own, out of the way of
-- \df webhook.*, which lists what users call.  Whoever may use the
-- webhook schema may use this one (granted with it in src/sql/code):
-- policies and views call these functions with their reader's rights.
CREATE SCHEMA webhook_internal;
COMMENT ON SCHEMA webhook_internal IS
    'the webhook extension''s internal functions: not an API';

-- The enumerations, each defined once, here: the columns that hold them
-- have these types, and the validators name their values in hints
-- (webhook_internal.check_choice).
CREATE TYPE webhook.signature_scheme AS ENUM ('standard', 'hmac-sha256', 'hmac-sha1', 'none');
COMMENT ON TYPE webhook.signature_scheme IS
    'how requests are signed: Standard Webhooks (webhook-signature), HMAC-SHA256 or HMAC-SHA1 hex in a header of the hook''s choice, or not at all';
CREATE TYPE webhook.payload_format AS ENUM ('standard', 'thin', 'envelope', 'row');
COMMENT ON TYPE webhook.payload_format IS
    'the request body: {type, timestamp, data}, the same without data, a CloudEvents-like envelope, or the row alone';
CREATE TYPE webhook.ordering AS ENUM ('none', 'hook', 'resource');
COMMENT ON TYPE webhook.ordering IS
    'none; hook: one delivery in flight, in event order; resource: the same per resource id';
CREATE TYPE webhook.on_dead AS ENUM ('continue', 'stop');
COMMENT ON TYPE webhook.on_dead IS
    'after a delivery of an ordered hook dies, the next one goes (continue) or the hook is disabled (stop)';
CREATE TYPE webhook.resume_point AS ENUM ('where_stopped', 'now');
COMMENT ON TYPE webhook.resume_point IS
    'where a hook re-enabled (or resumed) by update_hook(id, active => true) starts: where_stopped, with its waiting deliveries and then the events it missed while inactive, oldest first; or now, its waiting deliveries cancelled and the events it missed skipped';

-- A tenant's id, wherever a table holds one that a user chose; the
-- validator (webhook_internal.check_tenant) casts to it.
CREATE DOMAIN webhook.tenant_id AS text CHECK (VALUE ~ '^[A-Za-z0-9_-]+$');
COMMENT ON DOMAIN webhook.tenant_id IS
    'a tenant''s id: ASCII letters, digits, "_" and "-"';

-- What the listing functions return: the catalog rows with secrets masked.
CREATE TYPE webhook.transport_info AS (
    id                  bigint,
    tenant              text,
    name                text,
    base_url            text,
    headers             jsonb,
    auth                jsonb,
    query_key           text,
    connect_timeout     interval,
    timeout             interval,
    tls_verify          boolean,
    ca_file             text,
    client_cert_file    text,
    client_key_file     text,
    client_key_password text,
    max_in_flight       integer,
    max_per_second      double precision,
    created_at          timestamptz,
    updated_at          timestamptz
);
COMMENT ON TYPE webhook.transport_info IS
    'a transport as webhook.transports() shows it: credentials masked';

CREATE TYPE webhook.hook_info AS (
    id               bigint,
    uid              text,
    transport_id     bigint,
    tenant           text,
    url              text,
    path             text,
    event_types      text[],
    secret           text,
    signature        text,
    signature_header text,
    payload_format   text,
    retry_schedule   interval[],
    ordered          text,
    on_dead          text,
    filter           jsonpath,
    transform        regprocedure,
    active           boolean,
    disabled_reason  text,
    created_at       timestamptz,
    updated_at       timestamptz
);
COMMENT ON TYPE webhook.hook_info IS
    'a hook as webhook.hooks() shows it: secret masked, with its tenant and full URL';

CREATE TYPE webhook.notification AS (
    delivery_id  bigint,
    event_uid    uuid,
    event_type   text,
    tenant       text,
    hook_id      bigint,
    state        text,
    attempts     integer,
    last_status  integer,
    created_at   timestamptz,
    finished_at  timestamptz
);
COMMENT ON TYPE webhook.notification IS
    'one delivery as webhook.notifications() shows it';
