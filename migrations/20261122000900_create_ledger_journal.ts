import type { Knex } from 'knex';

/** The double-entry journal. Every movement of money or allowance is one journal entry with two or
 * more postings whose amounts sum to zero per unit. Sign convention: amount > 0 is a credit,
 * < 0 a debit; customer balances, liabilities and revenue read positive, assets (cash,
 * receivables) and expenses negative. Money is in micro-units of the currency (1e-6 of the major
 * unit); allowances in bytes, seconds or messages.
 *
 * Entries and postings are append-only: triggers refuse UPDATE, DELETE and TRUNCATE, so a
 * correction is always a new entry. The zero-sum rule is checked once per INSERT statement over its
 * transition table (an entry's postings are written together), which costs nothing per row. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('ledger_accounts', (t) => {
    t.bigIncrements('id').primary();
    t.text('code').notNullable().unique();
    t.text('kind').notNullable().checkIn(
      ['wallet', 'bucket', 'revenue', 'prepaid_liability', 'gateway_cash', 'receivables', 'wholesale_cost',
        'adjustments', 'allowance_grant', 'allowance_usage', 'discounts', 'taxes'],
      'ledger_accounts_kind_check',
    );
    t.text('unit').notNullable();
    t.uuid('billing_account_id').references('billing_accounts.id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE ledger_accounts
    ADD CONSTRAINT ledger_accounts_unit_check CHECK (unit ~ '^[A-Z]{3}$' OR unit IN ('bytes', 'seconds', 'messages'))`);

  await knex.schema.createTable('journal_entries', (t) => {
    t.bigIncrements('id').primary();
    t.text('entry_type').notNullable().checkIn(
      ['usage', 'top_up', 'recurring_charge', 'allowance_grant', 'allowance_expiry', 'adjustment', 'invoice',
        'payment', 'refund', 'credit_note', 'transfer', 'reversal'],
      'journal_entries_entry_type_check',
    );
    t.text('source_ref').notNullable();
    t.text('idempotency_key').unique();
    t.text('actor').notNullable();
    t.text('reason');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.timestamp('recorded_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['source_ref']);
  });
  await knex.raw(`ALTER TABLE journal_entries
    ADD CONSTRAINT journal_entries_adjustment_reason_check CHECK (entry_type <> 'adjustment' OR length(btrim(coalesce(reason, ''))) > 0)`);

  await knex.schema.createTable('postings', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('journal_entry_id').notNullable().references('journal_entries.id');
    t.bigInteger('ledger_account_id').notNullable().references('ledger_accounts.id');
    t.text('unit').notNullable();
    t.bigInteger('amount').notNullable();
    t.index(['journal_entry_id']);
    t.index(['ledger_account_id', 'id']);
  });
  await knex.raw(`ALTER TABLE postings ADD CONSTRAINT postings_amount_check CHECK (amount <> 0)`);

  await knex.raw(`
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger is append-only: % on % is refused; record a correcting entry instead', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
    END $$;

    CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
    CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
    CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
    CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

    CREATE FUNCTION ledger_check_double_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      unbalanced record;
    BEGIN
      SELECT p.journal_entry_id, p.unit, sum(p.amount) AS total, count(*) AS postings INTO unbalanced
        FROM (SELECT DISTINCT journal_entry_id FROM new_postings) touched
        JOIN postings p ON p.journal_entry_id = touched.journal_entry_id
        GROUP BY p.journal_entry_id, p.unit
        HAVING sum(p.amount) <> 0 OR count(*) < 1
        LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'journal entry % does not balance in %: postings sum to %', unbalanced.journal_entry_id, unbalanced.unit, unbalanced.total
          USING ERRCODE = 'check_violation';
      END IF;
      PERFORM 1 FROM new_postings np JOIN ledger_accounts a ON a.id = np.ledger_account_id WHERE a.unit <> np.unit LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'posting unit differs from its ledger account unit' USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$;

    CREATE TRIGGER postings_double_entry AFTER INSERT ON postings
      REFERENCING NEW TABLE AS new_postings
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_double_entry();
  `);

  // System accounts every currency-neutral flow needs; money accounts per currency are created on demand.
  await knex('ledger_accounts').insert(
    ['bytes', 'seconds', 'messages'].flatMap((unit) => [
      { code: `allowance_grant:${unit}`, kind: 'allowance_grant', unit },
      { code: `allowance_usage:${unit}`, kind: 'allowance_usage', unit },
    ]),
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE postings');
  await knex.raw('DROP TABLE journal_entries');
  await knex.raw('DROP TABLE ledger_accounts');
  await knex.raw('DROP FUNCTION ledger_check_double_entry()');
  await knex.raw('DROP FUNCTION ledger_refuse_change()');
}
