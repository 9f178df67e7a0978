from django.db import migrations

# The database refuses to change or delete an audit entry, whoever asks (a bug, a shell, raw
# SQL). Deleting a tenant still removes its entries: the foreign key cascades in the
# database, and the trigger lets a DELETE through only once the tenant row is gone.
APPEND_ONLY = """
CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND NOT EXISTS (
        SELECT 1 FROM tenants_tenant WHERE id = OLD.tenant_id
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();
DO $$
DECLARE c text;
BEGIN
    SELECT conname INTO c FROM pg_constraint
    WHERE conrelid = 'audit_auditentry'::regclass AND contype = 'f'
      AND confrelid = 'tenants_tenant'::regclass;
    EXECUTE format('ALTER TABLE audit_auditentry DROP CONSTRAINT %I', c);
END $$;
ALTER TABLE audit_auditentry ADD CONSTRAINT audit_auditentry_tenant_cascade
    FOREIGN KEY (tenant_id) REFERENCES tenants_tenant (id) ON DELETE CASCADE;
"""

DROP = """
DROP TRIGGER audit_entry_append_only ON audit_auditentry;
DROP FUNCTION audit_entry_append_only();
"""


class Migration(migrations.Migration):
    # Its own migration: Django adds 0001's foreign keys at the end of that migration, so
    # the constraint this replaces only exists once 0001 is done.
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
