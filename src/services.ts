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

/** The services the worker, scheduler and console roles and the CLI are built from, over one control database. */
export type Services = ReturnType<typeof buildServices>;

/**
 * What a front-end role (SFTP, online query) is built from: the registry (read on every login and
 * request), its change notices to the other processes, and the outbox it serves. Nothing that signs
 * or builds files, sends them or e-mails, or moves a link's compliance state: a front-end host holds
 * no more authority than it needs.
 */
export type FrontEndServices = ReturnType<typeof buildFrontEndServices>;

export function buildFrontEndServices(config: Config, cdb: ControlDb, clock: Clock = systemClock) {
  const registry = new Registry(cdb, loadCatalogs(), clock);
  // SFTP sessions of a link that changed are re-checked at once, in whichever process serves them.
  const linkEvents = linkEventPublisher(config);
  registry.onLinkChange((id) => linkEvents.publish(id));
  return { registry, linkEvents, outbox: openOutbox(config) };
}

export function buildServices(config: Config, cdb: ControlDb, clock: Clock = systemClock) {
  const { registry, linkEvents, outbox } = buildFrontEndServices(config, cdb, clock);
  const extracts = new ExtractService({
    cdb,
    registry,
    clock,
    outbox,
    keysDir: config.keysDir,
    retentionDays: config.outbox.retentionDays,
    openSource: () => openExtractSource(config),
  });
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

