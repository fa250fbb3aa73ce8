import type { Knex } from 'knex';

/** The charging engine caches, per line, the ids it locks (account, parent account, subscription,
 * plan, buckets, wallet). Whatever changes them notifies channel `charging_cache` with
 * 'account:<id>', 'subscriber:<id>' or 'all', and every engine drops what it cached for them.
 * The hot path's own updates (balances, reservations) change none of the watched columns, so it
 * never fires these triggers. Balances themselves are never cached: they are read under lock. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION charging_cache_notify_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      ids text[];
    BEGIN
      IF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT billing_account_id::text) INTO ids FROM old_rows;
      ELSE
        SELECT array_agg(DISTINCT billing_account_id::text) INTO ids FROM new_rows;
      END IF;
      IF ids IS NULL THEN RETURN NULL; END IF;
      IF cardinality(ids) > 100 THEN
        PERFORM pg_notify('charging_cache', 'all');
      ELSE
        PERFORM pg_notify('charging_cache', 'account:' || id) FROM unnest(ids) id;
      END IF;
      RETURN NULL;
    END $$;

    CREATE FUNCTION charging_cache_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_TABLE_NAME = 'subscribers' THEN
        PERFORM pg_notify('charging_cache', 'subscriber:' || OLD.id);
      ELSIF TG_TABLE_NAME = 'subscriptions' THEN
        IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('charging_cache', 'subscriber:' || OLD.subscriber_id); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('charging_cache', 'subscriber:' || NEW.subscriber_id); END IF;
      ELSIF TG_TABLE_NAME = 'billing_accounts' THEN
        PERFORM pg_notify('charging_cache', 'account:' || OLD.id);
      ELSIF TG_TABLE_NAME IN ('buckets', 'wallets') THEN
        PERFORM pg_notify('charging_cache', 'account:' || OLD.billing_account_id);
        PERFORM pg_notify('charging_cache', 'account:' || NEW.billing_account_id);
      ELSE
        PERFORM pg_notify('charging_cache', 'all');
      END IF;
      RETURN NULL;
    END $$;

    CREATE TRIGGER buckets_cache_insert AFTER INSERT ON buckets REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION charging_cache_notify_accounts();
    CREATE TRIGGER buckets_cache_delete AFTER DELETE ON buckets REFERENCING OLD TABLE AS old_rows
      FOR EACH STATEMENT EXECUTE FUNCTION charging_cache_notify_accounts();
    CREATE TRIGGER buckets_cache_update AFTER UPDATE OF billing_account_id, subscription_id, service, unit, priority, valid_from, valid_until ON buckets
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
    CREATE TRIGGER wallets_cache_insert AFTER INSERT ON wallets REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION charging_cache_notify_accounts();
    CREATE TRIGGER wallets_cache_update AFTER UPDATE OF billing_account_id, currency ON wallets
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
    CREATE TRIGGER subscribers_cache_update AFTER UPDATE OF billing_account_id, msisdn, sim_id, state ON subscribers
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
    CREATE TRIGGER subscriptions_cache_change AFTER INSERT OR DELETE OR UPDATE OF subscriber_id, plan_id, state ON subscriptions
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
    CREATE TRIGGER billing_accounts_cache_update AFTER UPDATE OF parent_account_id, payment_type, currency ON billing_accounts
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
    CREATE TRIGGER sims_cache_update AFTER UPDATE OF imsi ON sims
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER sims_cache_update ON sims;
    DROP TRIGGER billing_accounts_cache_update ON billing_accounts;
    DROP TRIGGER subscriptions_cache_change ON subscriptions;
    DROP TRIGGER subscribers_cache_update ON subscribers;
    DROP TRIGGER wallets_cache_update ON wallets;
    DROP TRIGGER wallets_cache_insert ON wallets;
    DROP TRIGGER buckets_cache_update ON buckets;
    DROP TRIGGER buckets_cache_delete ON buckets;
    DROP TRIGGER buckets_cache_insert ON buckets;
    DROP FUNCTION charging_cache_notify_row();
    DROP FUNCTION charging_cache_notify_accounts();
  `);
}
