import { describe, expect, it } from 'vitest';
import { OrderedAcks } from '../../../src/mqtt/ordered-acks.js';

describe('OrderedAcks', () => {
  it('writes in reservation order whatever the settling order [MQTT-4.6.0-2]', () => {
    const written: number[] = [];
    const acks = new OrderedAcks<number>({ writeAck: (value) => written.push(value) });
    const first = acks.reserve();
    const second = acks.reserve();
    const third = acks.reserve();
    third(3);
    second(2);
    expect(written).toEqual([]);
    expect(acks.pending).toBe(3);
    first(1);
    expect(written).toEqual([1, 2, 3]);
    expect(acks.pending).toBe(0);
  });

  it('keeps order over many thousands of acknowledgements', () => {
    const written: number[] = [];
    const acks = new OrderedAcks<number>({ writeAck: (value) => written.push(value) });
    const settles = Array.from({ length: 5000 }, () => acks.reserve());
    settles.forEach((settle, index) => {
      if (index % 2 === 1) settle(index);
    });
    settles.forEach((settle, index) => {
      if (index % 2 === 0) settle(index);
    });
    expect(written).toEqual(Array.from({ length: 5000 }, (_, index) => index));
  });
});

describe('OrderedAcks tickets', () => {
  it('writes in ticket order, each ticket once, across compaction', () => {
    const written: number[] = [];
    const acks = new OrderedAcks<number>({ writeAck: (value) => written.push(value) });
    const tickets = Array.from({ length: 5000 }, () => acks.take());
    for (const ticket of [...tickets].reverse()) if (ticket % 3 !== 0) acks.settle(ticket, ticket);
    expect(written).toEqual([]);
    for (const ticket of tickets) if (ticket % 3 === 0) acks.settle(ticket, ticket);
    // settled again: ignored
    acks.settle(tickets[0] as number, -1);
    expect(written).toEqual(tickets);
    expect(acks.pending).toBe(0);
    const later = acks.take();
    acks.settle(later, later);
    expect(written.at(-1)).toBe(5000);
  });
});
