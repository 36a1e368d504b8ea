import { describe, expect, it } from 'vitest';
import { settleAfter } from '../../src/settle-after.js';

describe('settleAfter', () => {
  it('settles on the count-th call, once', () => {
    let settled = 0;
    const part = settleAfter(3, () => settled++);
    part();
    part();
    expect(settled).toBe(0);
    part();
    expect(settled).toBe(1);
    part();
    expect(settled).toBe(1);
  });

  it('settles at once for nothing to wait for', () => {
    let settled = 0;
    settleAfter(0, () => settled++);
    expect(settled).toBe(1);
  });
});
