/** Builds the workflow bundle once (production images) so workers start without webpack:
 * `npx tsx scripts/bundle-workflows.ts dist/workflow-bundle.js`, then WORKFLOW_BUNDLE_PATH=dist/workflow-bundle.js. */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflows } from '../worker';

async function main(): Promise<void> {
  const target = path.resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, (await bundleWorkflows()).code);
  console.log(`workflow bundle written to ${target}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
