import type { Knex } from 'knex';

/** The charging cache trigger on subscriptions fires only when a watched column really changes.
 * `UPDATE OF subscriber_id, plan_id, state` fires whenever the column is in the SET list, and the
 * billing run's claim sets `state` (unchanged unless a free trial lapses) on every subscription it
 * renews: one queued trigger event and one pg_notify per row (~90 ms a 5,000-row batch) for
 * nothing. A WHEN clause is evaluated as the row is updated, so unchanged rows queue no event.
 * INSERT and DELETE keep their own trigger (a WHEN clause naming OLD cannot cover INSERT). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER subscriptions_cache_change ON subscriptions;
    CREATE TRIGGER subscriptions_cache_change AFTER INSERT OR DELETE ON subscriptions
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
    CREATE TRIGGER subscriptions_cache_update AFTER UPDATE OF subscriber_id, plan_id, state ON subscriptions
      FOR EACH ROW WHEN (OLD.subscriber_id IS DISTINCT FROM NEW.subscriber_id OR OLD.plan_id IS DISTINCT FROM NEW.plan_id
                         OR OLD.state IS DISTINCT FROM NEW.state)
      EXECUTE FUNCTION charging_cache_notify_row();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER subscriptions_cache_update ON subscriptions;
    DROP TRIGGER subscriptions_cache_change ON subscriptions;
    CREATE TRIGGER subscriptions_cache_change AFTER INSERT OR DELETE OR UPDATE OF subscriber_id, plan_id, state ON subscriptions
      FOR EACH ROW EXECUTE FUNCTION charging_cache_notify_row();
  `);
}
