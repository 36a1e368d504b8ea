/**
 * Setup file of the integration tests: the KafkaJS clients the tests make themselves (producers
 * and consumers on the other side of the bridge) get the request queue's clamped delay that the
 * bridge installs, so Node 23+ prints no TimeoutNegativeWarning for them (src/kafka/request-queue-timeout.ts).
 */
import { installRequestQueueTimeout } from '../../src/kafka/request-queue-timeout.js';

installRequestQueueTimeout();
