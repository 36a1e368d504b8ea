import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import {
  LineCounter,
  isMap,
  isScalar,
  parseDocument,
  type Document,
  type Pair,
  type YAMLMap,
} from 'yaml';
import { BridgeError } from '../errors.js';
import type { MappingIssue } from '../rules/errors.js';
import { formatIssue } from '../rules/errors.js';
import { readAuthFile } from './auth-file.js';

/*
 * Adds, changes and removes users of a users and ACL file in place, through the YAML document:
 * comments, rules and the order of everything else are kept. (One change of layout: a comment
 * after `key:` whose value is a block map or list moves to the line below, as the yaml package
 * writes it.)
 */

export type UserEdit =
  | { action: 'add'; name: string; verifier: string }
  | { action: 'change'; name: string; verifier: string }
  | { action: 'remove'; name: string };

/** A users file as read for editing; `exists` false when there is no file yet. */
export interface UsersFile {
  path: string;
  exists: boolean;
  doc: Document;
  /** Indentation of the file (spaces per level), kept when writing. */
  indent: number;
}

/** Reads and parses `path`; a missing file is an empty document. Throws on YAML syntax errors. */
export async function readUsersFile(path: string): Promise<UsersFile> {
  let text: string;
  let exists = true;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new BridgeError('CONFIG_INVALID', `cannot read ${path}: ${(error as Error).message}`);
    }
    text = '';
    exists = false;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((error): MappingIssue => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return { file: path, line, column: col, message: error.message };
    });
    throw new BridgeError('CONFIG_INVALID', issues.map(formatIssue).join('\n'));
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new BridgeError('CONFIG_INVALID', `${path}: the top level is not a map`);
  }
  return { path, exists, doc, indent: indentOf(text) };
}

/** Whether the file has a user of that name. */
export function hasUser(file: UsersFile, name: string): boolean {
  const users = usersMap(file);
  return users !== undefined && pairOf(users, name) !== undefined;
}

/**
 * Applies one edit to the document. Adding an existing user, or changing or removing a missing
 * one, throws (nothing is changed).
 */
export function applyUserEdit(file: UsersFile, edit: UserEdit): void {
  const { doc, path } = file;
  const users = usersMap(file);
  const pair = users && pairOf(users, edit.name);
  if (edit.action === 'add') {
    if (pair) {
      throw new BridgeError(
        'CONFIG_INVALID',
        `${path} already has a user "${edit.name}" (use change)`,
      );
    }
    const user = doc.createNode({ password: edit.verifier });
    if (users) users.add(doc.createPair(edit.name, user));
    else if (doc.contents === null) doc.contents = doc.createNode({ users: { [edit.name]: user } });
    else doc.set('users', doc.createNode({ [edit.name]: user }));
    return;
  }
  if (!users || !pair) {
    throw new BridgeError('CONFIG_INVALID', `${path} has no user "${edit.name}" (use add)`);
  }
  if (edit.action === 'remove') {
    users.items.splice(users.items.indexOf(pair), 1);
    return;
  }
  if (isMap(pair.value)) pair.value.set('password', edit.verifier);
  else pair.value = doc.createNode({ password: edit.verifier });
}

/**
 * Writes the document back atomically (a temporary file in the same folder, then a rename), with
 * the file's permissions, or owner-only ones for a new file. Returns the problems the bridge would
 * find in the result (the file is written all the same: they were there before, or concern other
 * fields).
 */
export async function writeUsersFile(file: UsersFile): Promise<string[]> {
  const text = file.doc.toString({
    indent: file.indent,
    lineWidth: 0,
    flowCollectionPadding: false,
  });
  const mode = file.exists ? (await stat(file.path)).mode & 0o777 : 0o600;
  const temporary = `${file.path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, text, { mode, flag: 'wx' });
    await chmod(temporary, mode);
    await rename(temporary, file.path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new BridgeError(
      'CONFIG_INVALID',
      `cannot write ${file.path}: ${(error as Error).message}`,
    );
  }
  const issues: MappingIssue[] = [];
  readAuthFile(file.path, text, issues);
  return issues.map(formatIssue);
}

/** The `users` map; undefined when there is none or it is empty (`users:`). Throws when it is something else. */
function usersMap(file: UsersFile): YAMLMap | undefined {
  const root = file.doc.contents;
  if (!isMap(root)) return undefined;
  const users: unknown = root.get('users', true);
  if (users === undefined || (isScalar(users) && users.value === null)) return undefined;
  if (!isMap(users)) throw new BridgeError('CONFIG_INVALID', `${file.path}: "users" is not a map`);
  return users;
}

function pairOf(users: YAMLMap, name: string): Pair | undefined {
  return users.items.find((pair) => {
    const key: unknown = pair.key;
    return isScalar(key) ? String(key.value) === name : key === name;
  });
}

/** The smallest indentation of a content line: the file's step; 2 when nothing is indented. */
function indentOf(text: string): number {
  let smallest = 0;
  for (const line of text.split('\n')) {
    const match = /^( +)[^\s#]/.exec(line);
    const width = match?.[1]?.length ?? 0;
    if (width > 0 && (smallest === 0 || width < smallest)) smallest = width;
  }
  return smallest === 0 ? 2 : Math.min(smallest, 8);
}
