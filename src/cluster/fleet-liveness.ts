/** What a bridge's heartbeat record says (sessions topic, key "i:" + instance id). */
export interface Heartbeat {
  /** When it was written (ms since the epoch, the writer's clock). */
  at: number;
  /** `down`: the bridge stopped (its sessions were saved offline first). */
  state: 'up' | 'down';
}

const INSTANCE_KEY_PREFIX = 'i:';

export function instanceKey(instanceId: string): string {
  return `${INSTANCE_KEY_PREFIX}${instanceId}`;
}

/** The instance id of a heartbeat record's key; undefined for other keys. */
export function instanceOfKey(key: string): string | undefined {
  return key.startsWith(INSTANCE_KEY_PREFIX) ? key.slice(INSTANCE_KEY_PREFIX.length) : undefined;
}

export function encodeHeartbeat(heartbeat: Heartbeat): string {
  return JSON.stringify({ v: 1, ...heartbeat });
}

export function decodeHeartbeat(text: string): Heartbeat | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<Heartbeat> & { v?: number };
    if (parsed.v !== 1 || typeof parsed.at !== 'number') return undefined;
    if (parsed.state !== 'up' && parsed.state !== 'down') return undefined;
    return { at: parsed.at, state: parsed.state };
  } catch {
    return undefined;
  }
}

/**
 * Which bridges of the fleet are alive, from their heartbeats: a bridge is gone when it said
 * so (`down`) or has not been heard of for `timeoutMs`. The sessions of a gone bridge are
 * adopted by one living bridge — the one whose instance id sorts first — so that their wills go
 * out and their expiry runs even though their owner is not there to do it.
 */
export class FleetLiveness {
  readonly #self: string;
  readonly #timeoutMs: number;
  /** Last heartbeat of each bridge, with when this bridge heard it. */
  readonly #heard = new Map<string, Heartbeat & { heardAt: number }>();

  constructor(self: string, timeoutMs: number) {
    this.#self = self;
    this.#timeoutMs = timeoutMs;
  }

  /** A heartbeat read from the topic (`heardAt`: now, or its own time while catching up). */
  heard(instanceId: string, heartbeat: Heartbeat, heardAt: number): void {
    this.#heard.set(instanceId, { ...heartbeat, heardAt });
  }

  /** When a bridge was last known alive (ms since the epoch); undefined: never heard of. */
  lastAlive(instanceId: string): number | undefined {
    const heard = this.#heard.get(instanceId);
    return heard && Math.min(heard.at, heard.heardAt);
  }

  alive(instanceId: string, now: number): boolean {
    if (instanceId === this.#self) return true;
    const heard = this.#heard.get(instanceId);
    // never heard of (no heartbeat in the topic): gone
    return heard !== undefined && heard.state === 'up' && now - heard.heardAt < this.#timeoutMs;
  }

  /** Whether this bridge adopts the sessions of the gone bridge `instanceId`. */
  adopts(instanceId: string, now: number): boolean {
    if (instanceId === this.#self || this.alive(instanceId, now)) return false;
    const living = [...this.#heard.keys()].filter((id) => this.alive(id, now));
    living.push(this.#self);
    return living.sort()[0] === this.#self;
  }
}
