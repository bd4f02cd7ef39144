/**
 * Runs until SIGINT or SIGTERM, then `stop`, for the commands that run the service (`start`, `demo`).
 * Resolves once it has stopped. The handlers stay after the first signal: a signal to the process
 * group may come twice (npx forwards what its group already received), and a second one without a
 * listener would kill the process before it has stopped its embedded Redis. A stop that takes over
 * 30 s, or fails, exits 1. Once stopped, timers of connections abandoned to a Redis that is gone
 * (BullMQ's, ioredis's) hold the process no more than a second.
 */
export function untilSignalled(stop: () => Promise<void>, stopping = 'stopping…'): Promise<void> {
  return new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (signal: string) => {
      if (signalled) return;
      signalled = true;
      console.log(`${signal}: ${stopping}`);
      setTimeout(() => {
        console.error('shutdown took longer than 30 s; exiting');
        process.exit(1);
      }, 30000).unref();
      stop().then(
        () => {
          console.log('stopped');
          setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
          resolve();
        },
        (err: Error) => {
          console.error(`nia-link: stopping failed: ${err.message}`);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
  });
}
