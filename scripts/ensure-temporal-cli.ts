/** `npm run tools:temporal`: finds the Temporal CLI or builds the pinned version into the cache. */
import { ensureTemporalCli, temporalCliVersion } from '../platform/temporal-cli';

ensureTemporalCli()
  .then((binary) => console.log(`${binary}\n${temporalCliVersion(binary)}`))
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
