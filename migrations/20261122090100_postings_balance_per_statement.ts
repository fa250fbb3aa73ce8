import type { Knex } from 'knex';

/**
 * The double-entry check sums each INSERT statement's own postings (its transition table) per
 * journal entry and unit, instead of reading back every posting of every touched entry.
 *
 * Why: reading back cost one index probe and heap fetch per posting — 10–20 µs each, the largest
 * single cost of a billing batch (a batch's allowance-grant entry has thousands of postings) and a
 * few µs of every charge. Why it is still sound: if every statement's postings balance per entry
 * and unit, so does the sum over all statements, i.e. every entry. It is stricter than before: an
 * entry can no longer be balanced by a later statement (nothing in the code base ever did that;
 * every writer inserts an entry's postings together).
 *
 * The reference checks (the entry and the account exist) and the unit check stay, done per
 * distinct entry and per distinct (account, unit) rather than per posting.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_check_double_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      unbalanced record;
      orphan record;
    BEGIN
      SELECT np.journal_entry_id, np.unit, sum(np.amount) AS total INTO unbalanced
        FROM new_postings np
       GROUP BY np.journal_entry_id, np.unit
      HAVING sum(np.amount) <> 0
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
      SELECT np.ledger_account_id, np.unit, a.id AS found_id, a.unit AS account_unit INTO orphan
        FROM (SELECT DISTINCT ledger_account_id, unit FROM new_postings) np
        LEFT JOIN ledger_accounts a ON a.id = np.ledger_account_id
       WHERE a.id IS NULL OR a.unit <> np.unit
       LIMIT 1;
      IF FOUND AND orphan.found_id IS NULL THEN
        RAISE EXCEPTION 'posting refers to ledger account %, which does not exist', orphan.ledger_account_id USING ERRCODE = 'foreign_key_violation';
      ELSIF FOUND THEN
        RAISE EXCEPTION 'posting unit differs from its ledger account unit' USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  // Back to 20261122021000's definition.
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
  `);
}
