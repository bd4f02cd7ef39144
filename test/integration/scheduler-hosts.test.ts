import { type Job, Worker } from 'bullmq';
import { loadConfig } from '../../src/config';
import { connection, openQueue, QUEUES, queuePrefix, syncSchedules, type TypedQueue } from '../../src/queue';
import { tmpDir } from '../helpers/world';

// The scheduler role may run on several hosts at once (so that losing one loses no schedule). Each
// synchronises the link schedules with Redis on its own timer; together they must still make one
// job per link per due time, never two.

const REDIS = process.env.NIA_TEST_REDIS_URL!;

it('two schedulers synchronising the same link schedules at once make exactly one job per link per due time', async () => {
  const config = loadConfig({ dataDir: tmpDir() }, { REDIS_URL: REDIS, NIA_LINK_INSTANCE_ID: `sched-${process.pid}`, NIA_LINK_LOG_LEVEL: 'silent' });
  const hosts: TypedQueue<'extract'>[] = [openQueue(QUEUES.extract, config, REDIS), openQueue(QUEUES.extract, config, REDIS)];
  const seen: { link: number; at: number }[] = [];
  const worker = new Worker(
    QUEUES.extract,
    async (job: Job) => {
      // The due time of a scheduled job: BullMQ names the job after its scheduler and that time.
      seen.push({ link: job.data.linkId, at: Number(/:(\d+)$/.exec(String(job.id))?.[1]) });
    },
    { connection: connection(REDIS), prefix: queuePrefix(config), concurrency: 4 },
  );
  try {
    // Every second (six-field cron), for two links; an inactive one must get no scheduler.
    const links = [
      { id: 1, schedule: '* * * * * *', active: true },
      { id: 2, schedule: '* * * * * *', active: true },
      { id: 3, schedule: '* * * * * *', active: false },
    ];
    const started = Date.now();
    // Both hosts' timers fire together, again and again, while the schedules produce jobs.
    while (Date.now() - started < 4500) {
      await Promise.all(hosts.map((q) => syncSchedules(q, links)));
      await new Promise((r) => setTimeout(r, 150));
    }
    for (const q of hosts) await syncSchedules(q, links.map((l) => ({ ...l, active: false })));
    await new Promise((r) => setTimeout(r, 1200));
    const per = new Map<string, number>();
    for (const s of seen) per.set(`${s.link}@${s.at}`, (per.get(`${s.link}@${s.at}`) ?? 0) + 1);
    expect([...per.entries()].filter(([, n]) => n > 1)).toEqual([]);
    expect(seen.filter((s) => s.link === 3)).toEqual([]);
    expect(seen.every((s) => Number.isInteger(s.at) && s.at % 1000 === 0)).toBe(true);
    // One job a second: neither doubled by the second host nor lost to the races of the two.
    const seconds = (Date.now() - started) / 1000;
    for (const link of [1, 2]) {
      const n = seen.filter((s) => s.link === link).length;
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    }
    expect(await hosts[0].getJobSchedulers(0, -1, true)).toEqual([]);
  } finally {
    await worker.close();
    for (const q of hosts) {
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
  }
}, 30000);
