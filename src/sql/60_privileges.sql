-- webhook install script, part 6: privileges.
--
-- Members of webhook_admin (and superusers) manage every tenant: through
-- the API functions, and by reading the catalog and its views.  Nobody else
-- has USAGE on the schema.  Writers of watched tables need nothing here:
-- the capture trigger runs as the extension's owner.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA webhook TO webhook_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA webhook TO webhook_admin;
