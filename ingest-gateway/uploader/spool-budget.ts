/** Bytes of finished segments on local disk not yet in the store, across all sessions. */
export class SpoolBudget {
  private used = 0;
  constructor(readonly limitBytes: number) {}
  get usedBytes() {
    return this.used;
  }
  take(bytes: number) {
    this.used += bytes;
  }
  give(bytes: number) {
    this.used = Math.max(0, this.used - bytes);
  }
  get over() {
    return this.used > this.limitBytes;
  }
}
