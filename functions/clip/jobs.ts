/** The clips being cut in this process, so a graceful shutdown lets them finish before closing the pools. */
export interface ClipJobs {
  add(job: Promise<void>): void;
  /** Resolves when every job running now has ended. */
  idle(): Promise<void>;
  readonly running: number;
}

export function createClipJobs(): ClipJobs {
  const jobs = new Set<Promise<void>>();
  return {
    add(job) {
      jobs.add(job);
      void job.finally(() => jobs.delete(job));
    },
    idle: async () => {
      await Promise.all([...jobs]);
    },
    get running() {
      return jobs.size;
    },
  };
}
