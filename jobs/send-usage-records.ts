import type { Config } from '../src/config';
import type { ControlDb } from '../src/db';
import type { Clock } from '../src/domain';
import type { Services } from '../src/services';
import { UsageRecordsService } from '../src/usagelog';

/** The service the monthly job and `report send` share, over a role's services. */
export function usageRecordsService(config: Config, cdb: ControlDb, clock: Clock, services: Services): UsageRecordsService {
  return new UsageRecordsService({
    cdb,
    clock,
    keysDir: config.keysDir,
    outbox: services.outbox,
    stagingDir: config.dataDir,
    retentionDays: config.outbox.retentionDays,
    catalogs: services.registry.catalogs,
  });
}

/**
 * Monthly job (R6.5): on the first day of a month, each agency with a link in use receives the
 * previous month's records of its own use in every such link's outbox, then through the links' push
 * channels. Re-running it (a retry) builds nothing twice; an agency that failed makes the job fail,
 * naming it, after the others got theirs.
 */
export function sendUsageRecordsProcessor(service: UsageRecordsService, onSent: (deliveryId: number) => Promise<void> = async () => undefined) {
  return async (): Promise<{ from: string; to: string; agencies: string[]; deliveries: number[] }> => {
    const r = await service.sendMonthly('scheduler');
    const ids = r.sent.flatMap((s) => s.deliveries.map((d) => d.delivery));
    for (const id of ids) await onSent(id);
    if (r.failed.length) throw new Error(`usage records ${r.from}–${r.to} not sent to ${r.failed.map((f) => `${f.agency} (${f.error})`).join('; ')}`);
    return { from: r.from, to: r.to, agencies: r.sent.map((s) => s.agency), deliveries: ids };
  };
}
