import type { RegistryDecoder } from './codecs/avro-registry.js';
import { payloadOf, valueDecoder } from './codecs/downlink-value.js';
import type { DownlinkRule } from './downlink-rule.js';
import type { DownlinkScope, DownlinkTemplate } from './downlink-templates.js';
import type {
  DownlinkMessage,
  DownlinkRecord,
  DownlinkResult,
  DownlinkSource,
  Requester,
} from './downlink-types.js';
import { PayloadError } from './errors.js';
import { expiresAt } from './expiry.js';
import { SYS_PROBLEM, isSysTopic, topicNameProblem } from './mqtt-topic-name.js';
import { RecordValue, headerValues, lastHeader, utf8 } from './record-value.js';

/** Turns Kafka records into MQTT messages according to the loaded `downlink` rules. */
export class DownlinkRouter {
  readonly ruleCount: number;
  /** Where the caller sends records that no rule matches or that a rule cannot map. */
  readonly deadLetterTopic: string | undefined;
  readonly #rules: readonly DownlinkRule[];
  /** The rules reading each topic seen so far, in rule order. */
  readonly #byTopic = new Map<string, readonly DownlinkRule[]>();

  /** `rules` in declaration order, which is the order of their results. */
  constructor(rules: readonly DownlinkRule[], deadLetterTopic?: string) {
    this.#rules = rules;
    this.ruleCount = rules.length;
    this.deadLetterTopic = deadLetterTopic;
  }

  /** The rules in declaration order (the admin API lists them). */
  get rules(): readonly DownlinkRule[] {
    return this.#rules;
  }

  /** What each rule reads, in rule order. */
  sources(): DownlinkSource[] {
    return this.#rules.map(({ name, from }) => ({
      rule: name,
      topics: from.topics && [...from.topics],
      pattern: from.pattern,
      groupId: from.group,
      start: from.start,
    }));
  }

  /** The topic names the rules list (not patterns), sorted, without repeats. */
  kafkaTopics(): string[] {
    return [...new Set(this.#rules.flatMap((rule) => rule.from.topics ?? []))].sort();
  }

  /** The decoders of rules with `schemaId: registry`, for the schema registry to bind. */
  registryDecoders(): RegistryDecoder[] {
    return this.#rules.flatMap(({ value }) => ('registry' in value ? [value.registry] : []));
  }

  /**
   * What must happen before `route(record)`: undefined when it can route at once (the usual
   * case), else a promise that resolves once the writer schema of a `schemaId: registry` rule's
   * value is fetched (or known to be missing). It rejects when the registry does not answer as
   * it should; the record must not be routed then: call again later.
   */
  prepare(record: DownlinkRecord): Promise<void> | undefined {
    let waits: Array<Promise<void>> | undefined;
    for (const { value } of this.#rulesFor(record.topic)) {
      const wait = 'registry' in value ? value.registry.prepare(record.value) : undefined;
      if (wait !== undefined) (waits ??= []).push(wait);
    }
    if (waits === undefined) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  }

  /** Results of every rule whose source matches `record.topic`, in rule order; [] = no rule. */
  route(record: DownlinkRecord): DownlinkResult[] {
    return this.#rulesFor(record.topic).map((rule): DownlinkResult => {
      try {
        const scope: DownlinkScope = {
          record,
          value: new RecordValue(record.value, valueDecoder(rule.value)),
        };
        const message = toMessage(rule, scope);
        const replyFor = rule.to.replyFor && requester(rule.to.replyFor, scope);
        return replyFor === undefined
          ? { kind: 'message', rule: rule.name, message }
          : { kind: 'message', rule: rule.name, message, replyFor };
      } catch (error) {
        if (!(error instanceof PayloadError)) throw error;
        return { kind: 'invalid', rule: rule.name, error: error.message };
      }
    });
  }

  #rulesFor(topic: string): readonly DownlinkRule[] {
    let rules = this.#byTopic.get(topic);
    if (rules === undefined) {
      rules = this.#rules.filter(({ from }) =>
        from.topics ? from.topics.includes(topic) : from.pattern?.test(topic) === true,
      );
      this.#byTopic.set(topic, rules);
    }
    return rules;
  }
}

/** The message of one rule; throws a PayloadError when the record does not fit the rule. */
function toMessage(rule: DownlinkRule, scope: DownlinkScope): DownlinkMessage {
  const { to } = rule;
  const { record, value } = scope;
  const properties: DownlinkMessage['properties'] = {};
  if (to.contentType) properties.contentType = to.contentType.render(scope);
  if (rule.value.format !== 'raw' && record.value !== null) {
    properties.payloadFormatIndicator = true;
  }
  if (to.responseTopic) {
    properties.responseTopic = topicName(to.responseTopic.render(scope), 'response topic');
  }
  const correlation = to.correlationData && lastHeader(record, to.correlationData);
  if (correlation !== undefined) {
    properties.correlationData = Buffer.from(correlation);
  }
  const userProperties = userPropertiesOf(record, to.userProperties);
  if (userProperties !== undefined) properties.userProperties = userProperties;
  return {
    topic: topicName(to.topic.render(scope), 'topic'),
    payload: payloadOf(rule.value, record.value, value),
    qos: to.qos,
    retain: to.retain,
    expiresAt: to.expiry && expiresAt(to.expiry, scope),
    properties,
  };
}

/**
 * The client a reply answers. A record that names none still maps: whether it may go out is
 * the broker's call (with authentication off, every reply does).
 */
function requester(replyFor: DownlinkTemplate, scope: DownlinkScope): Requester {
  let clientId: string;
  try {
    clientId = replyFor.render(scope);
  } catch (error) {
    if (!(error instanceof PayloadError)) throw error;
    return { missing: error.message };
  }
  return clientId === ''
    ? { missing: `replyFor ${JSON.stringify(replyFor.source)} is empty` }
    : { clientId };
}

function topicName(topic: string, what: 'topic' | 'response topic'): string {
  const problem =
    topicNameProblem(topic) ?? (what === 'topic' && isSysTopic(topic) ? SYS_PROBLEM : undefined);
  if (problem === undefined) return topic;
  throw new PayloadError(`the MQTT ${what} ${JSON.stringify(topic)} ${problem}`);
}

/**
 * Headers as user properties; a repeated header becomes a list. With `all`, headers that are
 * not UTF-8 (binary correlation data…) are left out; a header named in a list must be UTF-8.
 */
function userPropertiesOf(
  record: DownlinkRecord,
  spec: 'all' | readonly string[],
): Record<string, string | string[]> | undefined {
  const all = spec === 'all';
  const out = Object.create(null) as Record<string, string | string[]>;
  let any = false;
  for (const name of all ? Object.keys(record.headers) : spec) {
    const texts: string[] = [];
    for (const value of headerValues(record, name)) {
      try {
        texts.push(utf8(value, `header "${name}"`));
      } catch (error) {
        if (!all) throw error;
      }
    }
    if (texts.length === 0) continue;
    out[name] = texts.length === 1 ? (texts[0] as string) : texts;
    any = true;
  }
  return any ? out : undefined;
}
