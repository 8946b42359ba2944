-- webhook install script, part 6: privileges.
--
-- Members of webhook_admin (and superusers) manage every tenant: through
-- the API functions, and by reading the catalog and its views.  Nobody else
-- has USAGE on the schema.  Writers of watched tables need nothing here:
-- the capture trigger switches to the extension's owner for its own writes,
-- and a trigger function's EXECUTE right is checked only when the trigger
-- is made (by webhook.watch()), never when it fires.  So the trigger
-- function, which writes events for whatever tenant its arguments name, is
-- kept from everyone but the managers: nobody else can attach it to a
-- table of their own.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA webhook TO webhook_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA webhook TO webhook_admin;
REVOKE EXECUTE ON FUNCTION webhook.capture() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.capture() TO webhook_admin;
