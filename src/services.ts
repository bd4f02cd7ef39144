import type { Config } from './config';
import type { ControlDb } from './db';
import { systemClock, type Clock } from './domain';
import { ComplianceService } from './compliance';
import { PushService } from './delivery';
import { ExtractService, openExtractSource } from './extract';
import { FormService } from './forms';
import { openOutbox } from './outbox';
import { linkEventPublisher } from './queue/link-events';
import { loadCatalogs, Registry, RulesService, VendorService } from './registry';
import { UsageLogService } from './usagelog';

/** The services every role is built from, over one control database. */
export type Services = ReturnType<typeof buildServices>;

export function buildServices(config: Config, cdb: ControlDb, clock: Clock = systemClock) {
  const registry = new Registry(cdb, loadCatalogs(), clock);
  const outbox = openOutbox(config);
  const extracts = new ExtractService({
    cdb,
    registry,
    clock,
    outbox,
    keysDir: config.keysDir,
    retentionDays: config.outbox.retentionDays,
    openSource: () => openExtractSource(config),
  });
  // SFTP sessions of a link that changed are re-checked at once, in whichever process serves them.
  const linkEvents = linkEventPublisher(config);
  registry.onLinkChange((id) => linkEvents.publish(id));
  const pushes = new PushService({ cdb, registry, extracts, clock, keysDir: config.keysDir, connectTimeoutMs: config.push.connectTimeoutMs }, config);
  const compliance = new ComplianceService({ cdb, registry, clock, config });
  const usageLog = new UsageLogService({ cdb, config, clock });
  return {
    registry,
    outbox,
    extracts,
    pushes,
    compliance,
    linkEvents,
    usageLog,
    rules: new RulesService(cdb, registry, clock),
    vendors: new VendorService(cdb, registry, clock),
    forms: new FormService(cdb, registry, clock),
  };
}

