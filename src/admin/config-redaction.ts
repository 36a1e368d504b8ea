import { configSchema } from '../config/schema.js';

/** What GET /api/config shows in place of a secret that is set. */
export const REDACTED = '[redacted]';

/** Names of options that hold secrets, whether or not the schema marks them sensitive. */
const SECRET_NAME = /password|token|secret/i;
/** ...except paths of files holding them (`passwordFile`, `tokenFile`): a path is no secret. */
const FILE_PATH_NAME = /File$/;
/** `scheme://user:password@`: the password of credentials written into a URL. */
const URL_CREDENTIALS = /^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i;

type SchemaNode = Record<string, unknown>;

/**
 * The configuration with its secrets replaced by "[redacted]": the options the schema marks
 * `sensitive`, and any whose name says password, token or secret, so that an option added
 * without the mark is hidden all the same. An empty secret stays "" (it shows the option is not
 * set). Passwords written into URLs are redacted too. The input is not changed.
 */
export function redactConfig(config: object, schema: object = configSchema): SchemaNode {
  return redactNode(config as SchemaNode, schema as SchemaNode, false);
}

/** `withinSecret`: under a section named as a secret, where every value is one. */
function redactNode(
  node: SchemaNode,
  schema: SchemaNode | undefined,
  withinSecret: boolean,
): SchemaNode {
  const redacted: SchemaNode = {};
  for (const [name, value] of Object.entries(node)) {
    const option = schema?.[name] as SchemaNode | undefined;
    const isLeaf = option !== undefined && 'doc' in option;
    const secret =
      withinSecret ||
      (isLeaf && option.sensitive === true) ||
      (SECRET_NAME.test(name) && !FILE_PATH_NAME.test(name));
    if (secret && !isPlainObject(value)) {
      redacted[name] = value === '' ? '' : REDACTED;
    } else if (isPlainObject(value)) {
      redacted[name] = redactNode(value, isLeaf ? undefined : option, secret);
    } else {
      redacted[name] = redactValue(value);
    }
  }
  return redacted;
}

function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(URL_CREDENTIALS, `$1:${REDACTED}@`);
  if (Array.isArray(value)) return value.map((item) => redactValue(item));
  return value;
}

function isPlainObject(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
