import type { Knex } from 'knex';

/** Tamper evidence for the journal without a lock on the hot path: a sealing job hash-chains
 * consecutive ranges of journal entries after they have committed. Each seal stores the SHA-256 of
 * every entry in its range (canonical text of the entry and its postings), the previous seal's
 * hash and its own hash = SHA-256(prev_hash || entry digests). `scripts/ledger-verify.ts`
 * recomputes the chain and names any entry that changed, appeared or vanished — even one edited by
 * a superuser with triggers disabled. Seals are append-only. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE journal_seals (
      seal_no bigint PRIMARY KEY,
      first_entry_id bigint NOT NULL,
      last_entry_id bigint NOT NULL,
      entry_count integer NOT NULL,
      entry_ids bigint[] NOT NULL,
      entry_digests bytea NOT NULL,
      prev_hash text NOT NULL,
      hash text NOT NULL,
      sealed_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT journal_seals_range_check CHECK (last_entry_id >= first_entry_id),
      CONSTRAINT journal_seals_digests_check CHECK (octet_length(entry_digests) = 32 * entry_count AND cardinality(entry_ids) = entry_count)
    )`);
  await knex.raw(`CREATE UNIQUE INDEX journal_seals_last_entry_uq ON journal_seals (last_entry_id)`);
  await knex.raw(`CREATE TRIGGER journal_seals_append_only BEFORE UPDATE OR DELETE ON journal_seals
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`);
  await knex.raw(`CREATE TRIGGER journal_seals_no_truncate BEFORE TRUNCATE ON journal_seals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE journal_seals');
}
