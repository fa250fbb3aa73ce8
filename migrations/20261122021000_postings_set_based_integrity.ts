import type { Knex } from 'knex';

/**
 * Postings keep their referential integrity, checked once per INSERT statement instead of once
 * per row. The two foreign keys of `postings` cost, for every posting, two lookups through SPI and
 * a KEY SHARE lock (a WAL record) on the referenced journal entry and ledger account — about a
 * sixth of the charging hot path's database time. The statement-level double-entry trigger already
 * reads every new posting with its ledger account; it now also refuses a posting whose journal
 * entry or ledger account does not exist. What a foreign key also prevents — deleting a referenced
 * row — is covered by triggers: journal entries already refuse DELETE and TRUNCATE, and ledger
 * accounts now refuse them too (an account is never deleted; the ledger keeps its history).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_check_double_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      unbalanced record;
      orphan record;
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
      SELECT np.journal_entry_id INTO orphan FROM (SELECT DISTINCT journal_entry_id FROM new_postings) np
       WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = np.journal_entry_id) LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'posting refers to journal entry %, which does not exist', orphan.journal_entry_id USING ERRCODE = 'foreign_key_violation';
      END IF;
      SELECT np.ledger_account_id INTO orphan FROM (SELECT DISTINCT ledger_account_id FROM new_postings) np
        LEFT JOIN ledger_accounts a ON a.id = np.ledger_account_id WHERE a.id IS NULL LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'posting refers to ledger account %, which does not exist', orphan.ledger_account_id USING ERRCODE = 'foreign_key_violation';
      END IF;
      PERFORM 1 FROM new_postings np JOIN ledger_accounts a ON a.id = np.ledger_account_id WHERE a.unit <> np.unit LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'posting unit differs from its ledger account unit' USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$;

    CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
    CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

    ALTER TABLE postings DROP CONSTRAINT postings_journal_entry_id_foreign;
    ALTER TABLE postings DROP CONSTRAINT postings_ledger_account_id_foreign;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE postings ADD CONSTRAINT postings_journal_entry_id_foreign FOREIGN KEY (journal_entry_id) REFERENCES journal_entries (id);
    ALTER TABLE postings ADD CONSTRAINT postings_ledger_account_id_foreign FOREIGN KEY (ledger_account_id) REFERENCES ledger_accounts (id);
    DROP TRIGGER ledger_accounts_no_truncate ON ledger_accounts;
    DROP TRIGGER ledger_accounts_no_delete ON ledger_accounts;
    CREATE OR REPLACE FUNCTION ledger_check_double_entry() RETURNS trigger LANGUAGE plpgsql AS $$
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
  `);
}
