import type { Knex } from 'knex';

/**
 * A recurring charge's two account references (`billing_account_id`, the line's account, and
 * `payer_account_id`, its parent's for a family line, else the same) are checked against
 * billing_accounts in one pass over their distinct values, not two: for all but family lines both
 * are the same account, so the statement-level check of a 5,000-row claim probed the same 5,000
 * accounts twice. The error still names the column that refers to the missing account.
 */
/** One reference checked over the distinct values of the statement's new rows (as …080100 writes them). */
const check = (column: string, parent: string, label: string) => `
    SELECT n.v INTO orphan FROM (SELECT DISTINCT ${column} AS v FROM new_rows WHERE ${column} IS NOT NULL) n
     WHERE NOT EXISTS (SELECT 1 FROM ${parent} p WHERE p.id = n.v) LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'recurring charge refers to ${label} % (${column}), which does not exist in ${parent}', orphan.v
        USING ERRCODE = 'foreign_key_violation', TABLE = 'recurring_charges', COLUMN = '${column}';
    END IF;`;

const checks = (accounts: string) => `
  CREATE OR REPLACE FUNCTION recurring_charges_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    orphan record;
  BEGIN${check('subscription_id', 'subscriptions', 'subscription')}${accounts}${check('plan_id', 'plans', 'plan')}${check('offer_id', 'offers', 'offer')}
    RETURN NULL;
  END $$`;

const ONE_PASS = `
    SELECT n.v INTO orphan FROM (SELECT billing_account_id AS v FROM new_rows WHERE billing_account_id IS NOT NULL
                                 UNION SELECT payer_account_id FROM new_rows WHERE payer_account_id IS NOT NULL) n
     WHERE NOT EXISTS (SELECT 1 FROM billing_accounts p WHERE p.id = n.v) LIMIT 1;
    IF FOUND THEN
      IF EXISTS (SELECT 1 FROM new_rows WHERE billing_account_id = orphan.v) THEN
        RAISE EXCEPTION 'recurring charge refers to billing account % (billing_account_id), which does not exist in billing_accounts', orphan.v
          USING ERRCODE = 'foreign_key_violation', TABLE = 'recurring_charges', COLUMN = 'billing_account_id';
      END IF;
      RAISE EXCEPTION 'recurring charge refers to payer account % (payer_account_id), which does not exist in billing_accounts', orphan.v
        USING ERRCODE = 'foreign_key_violation', TABLE = 'recurring_charges', COLUMN = 'payer_account_id';
    END IF;`;

const TWO_PASSES = check('billing_account_id', 'billing_accounts', 'billing account') + check('payer_account_id', 'billing_accounts', 'payer account');

export async function up(knex: Knex): Promise<void> {
  await knex.raw(checks(ONE_PASS));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(checks(TWO_PASSES));
}
