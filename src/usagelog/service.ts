import type { Config } from '../config';
import type { ControlDb } from '../db';
import * as repo from '../db/repositories/usageLog';
import type { Clock } from '../domain';
import { scanAnomalies, type ScanResult } from './anomalies';
import { createCheckpoint, type CheckpointResult } from './checkpoints';

/** What the scheduled maintenance jobs do with the usage log. */
export class UsageLogService {
  constructor(private readonly d: { cdb: ControlDb; config: Config; clock: Clock }) {}

  /** Sign the head if it moved; nothing while the log is empty. */
  async checkpoint(): Promise<CheckpointResult | null> {
    if (!(await repo.head(this.d.cdb.db))) return null;
    return createCheckpoint(this.d.cdb, this.d.config.keysDir, this.d.clock.now());
  }

  /** R7.1 over the records written since the last scan. */
  scanAnomalies(): Promise<ScanResult> {
    return scanAnomalies(this.d.cdb, this.d.config.anomaly, this.d.clock.now(), true);
  }
}
