import type { TypedQueue } from './jobs';

export interface ScheduledLink {
  id: number;
  schedule: string | null;
  active: boolean;
}

export interface ScheduleSync {
  added: number[];
  updated: number[];
  removed: string[];
}

const KEY = (linkId: number) => `link:${linkId}` as const;

/**
 * Make the queue's job schedulers match the links: one per active link with a schedule (cron in
 * Asia/Taipei), none for any other. The database is the truth; this runs at start and periodically,
 * so a change made by any process (CLI, console) is applied within one interval.
 */
export async function syncSchedules(queue: TypedQueue<'extract'>, links: readonly ScheduledLink[]): Promise<ScheduleSync> {
  const result: ScheduleSync = { added: [], updated: [], removed: [] };
  const existing = new Map((await queue.getJobSchedulers(0, -1, true)).map((s) => [s.key, s]));
  const wanted = new Map<string, ScheduledLink>(links.filter((l) => l.active && l.schedule).map((l) => [KEY(l.id), l]));
  for (const [key] of existing) {
    if (key.startsWith('link:') && !wanted.has(key)) {
      await queue.removeJobScheduler(key);
      result.removed.push(key);
    }
  }
  for (const l of wanted.values()) {
    const key = KEY(l.id);
    const have = existing.get(key);
    const same = have && have.pattern === l.schedule && have.tz === 'Asia/Taipei';
    // A removed-then-re-added scheduler has been seen without a next job: check, and repair if so.
    const healthy = same && (await queue.getJobScheduler(key))?.next !== undefined;
    if (healthy) continue;
    await queue.upsertJobScheduler(key, { pattern: l.schedule!, tz: 'Asia/Taipei' }, { name: 'scheduled-extract' as const, data: { linkId: l.id, trigger: 'schedule' as const } });
    (have ? result.updated : result.added).push(l.id);
  }
  return result;
}
