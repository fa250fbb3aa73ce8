import type { Knex } from 'knex';

/**
 * The billing run's batch inserts keep their referential integrity, checked once per INSERT
 * statement instead of once per row (as 20261122021000 did for postings). Each foreign key costs,
 * per new row, a lookup through SPI and a KEY SHARE lock (a WAL record) on the referenced row: five
 * per `recurring_charges` row (~450 ms of a 5,000-row claim) and four per new allowance bucket
 * (its `ledger_accounts` row's account, and the bucket's ledger account, account and subscription).
 *
 * - INSERT: an AFTER INSERT … REFERENCING NEW TABLE … FOR EACH STATEMENT trigger refuses the
 *   statement if any new row names a row that does not exist (one anti-join per reference).
 * - UPDATE of a referencing column (buckets and their ledger accounts move on plan changes and
 *   account transfers): a row trigger, fired only WHEN the column changes, checks the new value.
 *   The charging hot path's balance updates never fire it.
 * - DELETE of a referenced row: a statement trigger on the referenced table refuses it while a
 *   row still refers to it; a key (`id`) never changes. Ledger accounts already refuse DELETE.
 * Unlike a foreign key, the check takes no lock on the referenced row: a DELETE committing
 * concurrently with an insert naming that row could leave an orphan. Nothing deletes billing
 * accounts, subscriptions, plans or offers (they end by state), so that race has no writer.
 * TRUNCATE of the referenced tables stays refused by their other foreign keys (wallets,
 * subscribers, final bill requests, …).
 */
const REFS: { table: string; column: string; parent: string; constraint: string }[] = [
  { table: 'recurring_charges', column: 'subscription_id', parent: 'subscriptions', constraint: 'recurring_charges_subscription_id_fkey' },
  { table: 'recurring_charges', column: 'billing_account_id', parent: 'billing_accounts', constraint: 'recurring_charges_billing_account_id_fkey' },
  { table: 'recurring_charges', column: 'payer_account_id', parent: 'billing_accounts', constraint: 'recurring_charges_payer_account_id_fkey' },
  { table: 'recurring_charges', column: 'plan_id', parent: 'plans', constraint: 'recurring_charges_plan_id_fkey' },
  { table: 'recurring_charges', column: 'offer_id', parent: 'offers', constraint: 'recurring_charges_offer_id_fkey' },
  { table: 'buckets', column: 'ledger_account_id', parent: 'ledger_accounts', constraint: 'buckets_ledger_account_id_foreign' },
  { table: 'buckets', column: 'billing_account_id', parent: 'billing_accounts', constraint: 'buckets_billing_account_id_foreign' },
  { table: 'buckets', column: 'subscription_id', parent: 'subscriptions', constraint: 'buckets_subscription_id_foreign' },
  { table: 'ledger_accounts', column: 'billing_account_id', parent: 'billing_accounts', constraint: 'ledger_accounts_billing_account_id_foreign' },
];
const CHILDREN = ['recurring_charges', 'buckets', 'ledger_accounts'];
const PARENTS = ['subscriptions', 'billing_accounts', 'plans', 'offers'];

const refsOf = (table: string) => REFS.filter((r) => r.table === table);
const singular = (table: string) => table.replace(/ies$/, 'y').replace(/s$/, '');
const label = (column: string) => column.replace(/_id$/, '').replace(/_/g, ' ');

export async function up(knex: Knex): Promise<void> {
  for (const table of CHILDREN) {
    const refs = refsOf(table);
    // Statement level: each reference checked once for the distinct values of the whole statement.
    const statementChecks = refs.map((r) => `
      SELECT n.v INTO orphan FROM (SELECT DISTINCT ${r.column} AS v FROM new_rows WHERE ${r.column} IS NOT NULL) n
       WHERE NOT EXISTS (SELECT 1 FROM ${r.parent} p WHERE p.id = n.v) LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION '${singular(table).replace(/_/g, ' ')} refers to ${label(r.column)} % (${r.column}), which does not exist in ${r.parent}', orphan.v
          USING ERRCODE = 'foreign_key_violation', TABLE = '${table}', COLUMN = '${r.column}';
      END IF;`).join('');
    const rowChecks = refs.map((r) => `
      IF NEW.${r.column} IS NOT NULL AND NEW.${r.column} IS DISTINCT FROM OLD.${r.column}
         AND NOT EXISTS (SELECT 1 FROM ${r.parent} p WHERE p.id = NEW.${r.column}) THEN
        RAISE EXCEPTION '${singular(table).replace(/_/g, ' ')} refers to ${label(r.column)} % (${r.column}), which does not exist in ${r.parent}', NEW.${r.column}
          USING ERRCODE = 'foreign_key_violation', TABLE = '${table}', COLUMN = '${r.column}';
      END IF;`).join('');
    const columns = refs.map((r) => r.column);
    await knex.raw(`
      CREATE FUNCTION ${table}_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        orphan record;
      BEGIN${statementChecks}
        RETURN NULL;
      END $$;
      CREATE FUNCTION ${table}_check_changed_refs() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN${rowChecks}
        RETURN NULL;
      END $$;
      CREATE TRIGGER ${table}_refs_insert AFTER INSERT ON ${table} REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ${table}_check_refs();
      CREATE TRIGGER ${table}_refs_update AFTER UPDATE OF ${columns.join(', ')} ON ${table}
        FOR EACH ROW WHEN (${columns.map((c) => `OLD.${c} IS DISTINCT FROM NEW.${c}`).join(' OR ')})
        EXECUTE FUNCTION ${table}_check_changed_refs();
      ${refs.map((r) => `ALTER TABLE ${table} DROP CONSTRAINT ${r.constraint};`).join('\n      ')}
    `);
  }
  await knex.raw(`
    CREATE FUNCTION billing_refuse_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '%: the id of a row never changes (other tables refer to it)', TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
    END $$`);
  for (const parent of PARENTS) {
    const refs = REFS.filter((r) => r.parent === parent);
    const checks = refs.map((r) => `
      SELECT o.id INTO used FROM old_rows o WHERE EXISTS (SELECT 1 FROM ${r.table} c WHERE c.${r.column} = o.id) LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION '${singular(parent).replace(/_/g, ' ')} % is still referenced from ${r.table}.${r.column}', used.id
          USING ERRCODE = 'foreign_key_violation', TABLE = '${r.table}', COLUMN = '${r.column}';
      END IF;`).join('');
    await knex.raw(`
      CREATE FUNCTION ${parent}_refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        used record;
      BEGIN${checks}
        RETURN NULL;
      END $$;
      CREATE TRIGGER ${parent}_referenced_delete AFTER DELETE ON ${parent} REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ${parent}_refuse_referenced_delete();
      CREATE TRIGGER ${parent}_key_fixed BEFORE UPDATE OF id ON ${parent}
        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION billing_refuse_key_change();
    `);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const parent of [...PARENTS].reverse()) {
    await knex.raw(`
      DROP TRIGGER ${parent}_key_fixed ON ${parent};
      DROP TRIGGER ${parent}_referenced_delete ON ${parent};
      DROP FUNCTION ${parent}_refuse_referenced_delete();
    `);
  }
  await knex.raw('DROP FUNCTION billing_refuse_key_change()');
  for (const table of [...CHILDREN].reverse()) {
    await knex.raw(`
      ${refsOf(table).map((r) => `ALTER TABLE ${table} ADD CONSTRAINT ${r.constraint} FOREIGN KEY (${r.column}) REFERENCES ${r.parent} (id);`).join('\n      ')}
      DROP TRIGGER ${table}_refs_update ON ${table};
      DROP TRIGGER ${table}_refs_insert ON ${table};
      DROP FUNCTION ${table}_check_changed_refs();
      DROP FUNCTION ${table}_check_refs();
    `);
  }
}
