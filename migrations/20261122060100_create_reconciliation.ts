import type { Knex } from 'knex';

/** MNO wholesale reconciliation.
 *
 * - Partners (one per host MNO) with versioned terms: tolerances and a wholesale rate card
 *   (rows per service and zone, so matching prices in SQL), each version effective from a date.
 * - Wholesale imports: one row per file; the decompressed content's SHA-256 is unique per partner
 *   (a file already imported is refused). Rejected rows are kept with their line numbers.
 * - Wholesale records: the COPY target, partitioned by import (a partition per file, created by
 *   the import; UNLOGGED by default for speed) and sub-partitioned by matching chunk.
 * - Runs: one per partner, period and version; the our-side usage of a run is staged (derived
 *   data, re-stageable) in `reconciliation_our_usage`, partitioned by run and chunk. Chunk results
 *   (discrepancies, settlement lines, the chunk row) are written in one transaction keyed by
 *   (run, chunk). An approved run and everything under it can no longer change (triggers).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE reconciliation_partners (
      id bigserial PRIMARY KEY,
      code text NOT NULL UNIQUE CONSTRAINT reconciliation_partners_code_check CHECK (code ~ '^[a-z0-9][a-z0-9_-]{1,31}$'),
      name text NOT NULL,
      currency char(3) NOT NULL CONSTRAINT reconciliation_partners_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
      identity_key text NOT NULL DEFAULT 'imsi' CONSTRAINT reconciliation_partners_identity_check CHECK (identity_key IN ('imsi', 'msisdn')),
      column_mapping jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE reconciliation_partner_terms (
      id bigserial PRIMARY KEY,
      partner_id bigint NOT NULL REFERENCES reconciliation_partners(id),
      version integer NOT NULL,
      effective_from date NOT NULL,
      time_window_ms integer NOT NULL CHECK (time_window_ms >= 0),
      volume_relative_ppm integer NOT NULL CHECK (volume_relative_ppm >= 0),
      volume_abs_data bigint NOT NULL CHECK (volume_abs_data >= 0),
      volume_abs_voice bigint NOT NULL CHECK (volume_abs_voice >= 0),
      volume_abs_sms bigint NOT NULL CHECK (volume_abs_sms >= 0),
      amount_tolerance_micros bigint NOT NULL CHECK (amount_tolerance_micros >= 0),
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (partner_id, version),
      UNIQUE (partner_id, effective_from)
    );

    CREATE TABLE reconciliation_rates (
      terms_id bigint NOT NULL REFERENCES reconciliation_partner_terms(id),
      service text NOT NULL CHECK (service IN ('data', 'voice', 'sms')),
      zone text NOT NULL,
      micros_per_unit bigint NOT NULL CHECK (micros_per_unit >= 0),
      unit_size bigint NOT NULL CHECK (unit_size > 0),
      PRIMARY KEY (terms_id, service, zone)
    );

    CREATE TABLE wholesale_imports (
      id bigserial PRIMARY KEY,
      partner_id bigint NOT NULL REFERENCES reconciliation_partners(id),
      file_name text NOT NULL,
      source text NOT NULL CHECK (source IN ('upload', 'path', 'folder')),
      raw_sha256 text NOT NULL,
      content_sha256 text NOT NULL,
      chunk_count integer NOT NULL CHECK (chunk_count BETWEEN 1 AND 256),
      lines bigint NOT NULL,
      records bigint NOT NULL,
      rejected bigint NOT NULL,
      empty_lines bigint NOT NULL,
      first_started_at timestamptz,
      last_started_at timestamptz,
      imported_by text NOT NULL,
      imported_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (partner_id, content_sha256)
    );

    CREATE TABLE wholesale_import_rejections (
      import_id bigint NOT NULL REFERENCES wholesale_imports(id) ON DELETE CASCADE,
      line_number bigint NOT NULL,
      reason text NOT NULL,
      raw text NOT NULL,
      PRIMARY KEY (import_id, line_number)
    );

    CREATE TABLE wholesale_records (
      import_id bigint NOT NULL,
      chunk smallint NOT NULL,
      line_number bigint NOT NULL,
      record_id text NOT NULL,
      imsi text NOT NULL,
      msisdn text,
      service text NOT NULL,
      started_at timestamptz NOT NULL,
      volume bigint NOT NULL,
      zone text NOT NULL,
      wholesale_amount_micros bigint NOT NULL,
      currency char(3) NOT NULL
    ) PARTITION BY LIST (import_id);

    CREATE TABLE reconciliation_runs (
      id bigserial PRIMARY KEY,
      partner_id bigint NOT NULL REFERENCES reconciliation_partners(id),
      period text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
      period_start timestamptz NOT NULL,
      period_end timestamptz NOT NULL,
      version integer NOT NULL,
      terms_id bigint NOT NULL REFERENCES reconciliation_partner_terms(id),
      import_ids bigint[] NOT NULL,
      chunk_count integer NOT NULL CHECK (chunk_count BETWEEN 1 AND 256),
      status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'staging', 'matching', 'settling', 'ready', 'approved', 'failed', 'superseded')),
      chunks_done integer NOT NULL DEFAULT 0,
      staged_counts jsonb,
      summary jsonb,
      error text,
      workflow_id text,
      requested_by text NOT NULL,
      approved_by text,
      approved_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (partner_id, period, version),
      CHECK ((status = 'approved') = (approved_by IS NOT NULL AND approved_at IS NOT NULL))
    );
    CREATE UNIQUE INDEX reconciliation_runs_one_approved ON reconciliation_runs (partner_id, period) WHERE status = 'approved';

    CREATE TABLE reconciliation_our_usage (
      run_id bigint NOT NULL,
      chunk smallint NOT NULL,
      id bigint NOT NULL,
      key text NOT NULL,
      imsi text,
      msisdn text,
      service text NOT NULL,
      zone text NOT NULL,
      started_at timestamptz NOT NULL,
      volume bigint NOT NULL,
      amount_micros bigint NOT NULL
    ) PARTITION BY LIST (run_id);

    CREATE TABLE reconciliation_chunks (
      run_id bigint NOT NULL REFERENCES reconciliation_runs(id),
      chunk smallint NOT NULL,
      counts jsonb NOT NULL,
      finished_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (run_id, chunk)
    );

    CREATE TABLE reconciliation_discrepancies (
      id bigserial PRIMARY KEY,
      run_id bigint NOT NULL REFERENCES reconciliation_runs(id),
      chunk smallint NOT NULL,
      category text NOT NULL CHECK (category IN ('matched', 'volume_mismatch', 'missing_ours', 'missing_mno', 'duplicate',
        'unknown_subscriber', 'rate_mismatch')),
      side text NOT NULL CHECK (side IN ('mno', 'ours', 'both')),
      import_id bigint,
      line_number bigint,
      record_id text,
      mno_key text,
      mno_service text,
      mno_zone text,
      mno_started_at timestamptz,
      mno_volume bigint,
      mno_amount_micros bigint,
      rate_card_micros bigint,
      rated_usage_id bigint,
      our_key text,
      our_service text,
      our_zone text,
      our_started_at timestamptz,
      our_volume bigint,
      our_amount_micros bigint,
      amount_at_stake_micros bigint NOT NULL,
      CHECK ((side = 'ours') = (line_number IS NULL) AND (side = 'mno') = (rated_usage_id IS NULL))
    );
    CREATE INDEX reconciliation_discrepancies_run_idx ON reconciliation_discrepancies (run_id, category, id);
    CREATE INDEX reconciliation_discrepancies_chunk_idx ON reconciliation_discrepancies (run_id, chunk);

    CREATE TABLE reconciliation_settlement_lines (
      run_id bigint NOT NULL REFERENCES reconciliation_runs(id),
      chunk smallint NOT NULL,
      service text NOT NULL,
      zone text NOT NULL,
      category text NOT NULL,
      mno_records bigint NOT NULL,
      our_records bigint NOT NULL,
      mno_volume bigint NOT NULL,
      our_volume bigint NOT NULL,
      rate_card_micros bigint NOT NULL,
      mno_claimed_micros bigint NOT NULL,
      retail_revenue_micros bigint NOT NULL,
      PRIMARY KEY (run_id, chunk, service, zone, category)
    );

    CREATE TABLE reconciliation_reports (
      run_id bigint NOT NULL REFERENCES reconciliation_runs(id),
      format text NOT NULL CHECK (format IN ('csv', 'html', 'json')),
      content text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (run_id, format)
    );

    -- An approved run is final: the run row cannot change or go, nor can anything under it.
    CREATE FUNCTION reconciliation_refuse_approved_run() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.status = 'approved' THEN
        RAISE EXCEPTION 'reconciliation run % is approved and immutable: % refused; start a new version instead', OLD.id, TG_OP
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER reconciliation_runs_immutable BEFORE UPDATE OR DELETE ON reconciliation_runs
      FOR EACH ROW EXECUTE FUNCTION reconciliation_refuse_approved_run();

    CREATE FUNCTION reconciliation_refuse_approved_child() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      rid bigint;
    BEGIN
      IF TG_OP = 'INSERT' THEN rid := NEW.run_id; ELSE rid := OLD.run_id; END IF;
      IF EXISTS (SELECT 1 FROM reconciliation_runs WHERE id = rid AND status = 'approved') THEN
        RAISE EXCEPTION 'reconciliation run % is approved and immutable: % on % refused', rid, TG_OP, TG_TABLE_NAME
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER reconciliation_discrepancies_immutable BEFORE UPDATE OR DELETE ON reconciliation_discrepancies
      FOR EACH ROW EXECUTE FUNCTION reconciliation_refuse_approved_child();
    CREATE TRIGGER reconciliation_settlement_immutable BEFORE INSERT OR UPDATE OR DELETE ON reconciliation_settlement_lines
      FOR EACH ROW EXECUTE FUNCTION reconciliation_refuse_approved_child();
    CREATE TRIGGER reconciliation_chunks_immutable BEFORE INSERT OR UPDATE OR DELETE ON reconciliation_chunks
      FOR EACH ROW EXECUTE FUNCTION reconciliation_refuse_approved_child();
    CREATE TRIGGER reconciliation_reports_immutable BEFORE INSERT OR UPDATE OR DELETE ON reconciliation_reports
      FOR EACH ROW EXECUTE FUNCTION reconciliation_refuse_approved_child();

    -- Discrepancy inserts are checked per statement (a chunk writes thousands at once).
    CREATE FUNCTION reconciliation_refuse_approved_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM reconciliation_runs r WHERE r.status = 'approved' AND r.id IN (SELECT DISTINCT run_id FROM new_rows)) THEN
        RAISE EXCEPTION 'reconciliation run is approved and immutable: INSERT on % refused', TG_TABLE_NAME
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER reconciliation_discrepancies_insert_immutable AFTER INSERT ON reconciliation_discrepancies
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_refuse_approved_insert();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE reconciliation_reports;
    DROP TABLE reconciliation_settlement_lines;
    DROP TABLE reconciliation_discrepancies;
    DROP TABLE reconciliation_chunks;
    DROP TABLE reconciliation_our_usage;
    DROP TABLE reconciliation_runs;
    DROP TABLE wholesale_records;
    DROP TABLE wholesale_import_rejections;
    DROP TABLE wholesale_imports;
    DROP TABLE reconciliation_rates;
    DROP TABLE reconciliation_partner_terms;
    DROP TABLE reconciliation_partners;
    DROP FUNCTION reconciliation_refuse_approved_insert();
    DROP FUNCTION reconciliation_refuse_approved_child();
    DROP FUNCTION reconciliation_refuse_approved_run();
  `);
}
