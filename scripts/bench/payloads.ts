/** Payloads and record values the generators and producers share. */

/**
 * A device's JSON telemetry reading (about 190 bytes): field names repeat, values vary, so it
 * compresses as real telemetry does, unlike a run of one byte (the compression scenario).
 */
export function telemetryPayload(device: number, sequence: number): Buffer {
  const reading = {
    device: `bench-device-${device}`,
    seq: sequence,
    ts: Date.now(),
    celsius: Math.round((18 + Math.random() * 8) * 100) / 100,
    humidity: Math.round((30 + Math.random() * 40) * 10) / 10,
    pressure: Math.round(990 + Math.random() * 40),
    battery: Math.round((3.3 + Math.random() * 0.9) * 1000) / 1000,
    rssi: -40 - Math.floor(Math.random() * 50),
    status: 'ok',
    firmware: '1.4.2',
  };
  return Buffer.from(JSON.stringify(reading));
}

/**
 * A value of `bytes` bytes whose first 8 hold the wall-clock time now (float64, epoch ms), read
 * by a subscribing generator in another process: produce-to-receive latency on one machine.
 */
export function stampedValue(bytes: number): Buffer {
  const value = Buffer.alloc(Math.max(8, bytes), 'x');
  value.writeDoubleBE(performance.timeOrigin + performance.now(), 0);
  return value;
}
