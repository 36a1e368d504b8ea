import { describe, expect, it } from 'vitest';
import { PublishRate } from '../../../src/mqtt/publish-rate.js';

describe('PublishRate', () => {
  it('lets one second of publishes through, then says how long until the rate holds', () => {
    let now = 0;
    const rate = new PublishRate(10, () => now);
    for (let index = 0; index < 10; index++) expect(rate.take()).toBe(0);
    expect(rate.take()).toBe(100);
    for (let index = 0; index < 9; index++) rate.take();
    expect(rate.debtMs()).toBe(1_000);
    now = 600;
    expect(rate.debtMs()).toBe(400);
    now = 1_000;
    expect(rate.take()).toBe(100);
    now = 60_000; // the bucket holds one second at most
    for (let index = 0; index < 10; index++) expect(rate.take()).toBe(0);
    expect(rate.take()).toBeGreaterThan(0);
  });
});
