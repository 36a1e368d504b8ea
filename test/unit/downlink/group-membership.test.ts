import type { Consumer } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { GroupMembership } from '../../../src/downlink/group-membership.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';

function membership(takeOverOnFirstJoin = false) {
  const paused = new Set<string>();
  const consumer = {
    pause: (topics: Array<{ topic: string }>) => {
      for (const { topic } of topics) paused.add(topic);
    },
    resume: (topics: Array<{ topic: string }>) => {
      for (const { topic } of topics) paused.delete(topic);
    },
    disconnect: () => Promise.resolve(),
  } as unknown as Consumer;
  const metrics = new BridgeMetrics();
  const subject = new GroupMembership(
    'g',
    consumer,
    { startDelayMs: 1_000, takeOverOnFirstJoin },
    pino({ level: 'silent' }),
    metrics,
  );
  onTestFinished(() => subject.leave());
  return { subject, paused, metrics };
}

describe('GroupMembership', () => {
  it('consumes at once what its first join gives; stands by with nothing; waits startDelayMs when it takes over', async () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { subject, paused, metrics } = membership();
    subject.joined({ cmds: [0, 1] });
    expect(subject.consuming).toBe(true);
    expect(paused.size).toBe(0);
    expect((await metrics.downlinkAssignedPartitions.get()).values[0]?.value).toBe(2);

    subject.joined({});
    expect(subject.heldSince).toBeUndefined();
    expect(subject.consuming).toBe(false);

    subject.joined({ cmds: [0, 1] });
    expect(subject.heldSince).toBeDefined();
    expect(subject.consuming).toBe(false); // holds, waits out the takeover
    expect([...paused]).toEqual(['cmds']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(paused.size).toBe(0);
    expect(subject.consuming).toBe(true);
  });

  it('treats its first join as a takeover after a restart', () => {
    const { subject, paused } = membership(true);
    subject.joined({ cmds: [0] });
    expect([...paused]).toEqual(['cmds']);
  });

  it('commits per partition up to the oldest unsettled record, and forgets partitions it lost', () => {
    const { subject } = membership();
    subject.joined({ cmds: [0, 1] });
    const settle0 = subject.partition('cmds', 0).track('5');
    subject.partition('cmds', 1).track('7');
    subject.partition('cmds', 0).track('6')();
    expect(subject.committable()).toEqual([
      { topic: 'cmds', partition: 0, offset: '5' },
      { topic: 'cmds', partition: 1, offset: '7' },
    ]);
    settle0();
    subject.joined({ cmds: [0] });
    expect(subject.committable()).toEqual([{ topic: 'cmds', partition: 0, offset: '7' }]);
  });
});
