/** Error codes of the bridge; each names a class of failure a caller may act on. */
export type BridgeErrorCode =
  | 'CONFIG_INVALID'
  | 'MAPPINGS_INVALID'
  | 'KAFKA_UNAVAILABLE'
  | 'KAFKA_PRODUCE_FAILED'
  | 'LISTEN_FAILED';

/** Base of the bridge's own errors: a code, a message for people, and the cause. */
export class BridgeError extends Error {
  readonly code: BridgeErrorCode;

  constructor(code: BridgeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
