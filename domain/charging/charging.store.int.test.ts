import { Pool, type PoolClient } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { loadAnswers, lockBatchState, prepareConnection, type LockKeys } from './charging.store';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

function nodesOn(plan: PlanNode, relation: string): PlanNode[] {
  const own = plan['Relation Name'] === relation ? [plan] : [];
  return [...own, ...(plan.Plans ?? []).flatMap((p) => nodesOn(p, relation))];
}

describe('charging store statements (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  let client: PoolClient;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 1 });
    client = await pool.connect();
    await prepareConnection(client);
  });
  afterAll(async () => {
    client.release();
    await pool.end();
    await t.drop();
  });

  const keys = (refs: string[], seqs: number[]): LockKeys => ({
    refs: [], subscriberIds: [], bucketIds: [], walletIds: [], answerRefs: refs, answerSeqs: seqs, walletKeys: [],
  });

  // The engine keeps its prepared (generic) plans for the connection's life: a plan chosen while
  // charging_requests was empty (and known to be: vacuumed, as after a bulk load) must still reach
  // stored answers by key once the table is large.
  it('looks stored answers up by primary key, with plans prepared on an empty table', async () => {
    await client.query('VACUUM ANALYZE charging_requests');
    await lockBatchState(client, keys(['none'], [0])); // prepares the lock statement (empty table)
    await client.query('ROLLBACK');
    await loadAnswers(client, ['none'], [0]); // prepares the retransmission lookup

    await client.query(`
      INSERT INTO charging_requests (charging_data_ref, invocation_sequence_number, operation, http_status, response, received_at)
      SELECT 'ref-' || i, i % 4, 'update', 200, json_build_object('n', i), now() FROM generate_series(1, 5000) i`);
    // no ANALYZE here: new statistics would make PostgreSQL plan the statements again

    const lock = await lockBatchState(client, keys(['ref-42', 'ref-43', 'ref-missing'], [2, 0, 0]));
    await client.query('ROLLBACK');
    expect([...lock.priorAnswers.values()].map((a) => [a.ref, a.sequenceNumber, a.httpStatus, a.response])).toEqual([['ref-42', 2, 200, { n: 42 }]]);
    const loaded = await loadAnswers(client, ['ref-7', 'ref-8'], [3, 1]);
    expect([...loaded.values()].map((a) => [a.ref, a.sequenceNumber])).toEqual([['ref-7', 3]]);

    const prepared = await client.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE name LIKE 'charging_lock_%' OR name LIKE 'charging_answers_%'`);
    expect(prepared.rows).toHaveLength(2);
    for (const { name } of prepared.rows) {
      const args = name.startsWith('charging_lock_') ? `'{}', '{}', '{}', '{}', '{ref-1}', '{1}'` : `'{ref-1}', '{1}'`;
      const explained = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE ${name}(${args})`);
      const scans = nodesOn((explained.rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan, 'charging_requests');
      expect(scans.length).toBeGreaterThan(0);
      for (const scan of scans) expect(scan['Index Cond']).toMatch(/k\.ref.*k\.seq/);
    }
  });
});
