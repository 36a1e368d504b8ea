import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { MappingError, formatIssue, formatPosition } from './errors.js';
import type { MappingIssue } from './errors.js';
import { AvroSchemas } from './codecs/avro.js';
import { DownlinkRouter } from './downlink-router.js';
import { sourceConflicts } from './downlink-sources.js';
import type { MappingFile, MappingSettings } from './rule.js';
import { DEFAULT_SETTINGS, Router } from './router.js';
import { readMappingFile } from './schema.js';
import type { SourcePosition } from './types.js';

const MAPPING_EXTENSIONS = ['.yaml', '.yml'];

/** The loaded mapping rules: publishes to records, and records to messages. */
export interface Mappings {
  uplink: Router;
  downlink: DownlinkRouter;
}

export interface MappingSource {
  /** The name used in messages, e.g. `mappings/example.yaml`. */
  file: string;
  text: string;
}

/**
 * Loads a mapping file, or every `*.yaml` / `*.yml` file directly in a folder (sorted by name).
 * Throws a MappingError listing every problem of every file; never returns partial mappings.
 */
export async function loadMappings(path: string): Promise<Mappings> {
  const files = await mappingFiles(path);
  const issues: MappingIssue[] = [];
  const sources: MappingSource[] = [];
  for (const file of files) {
    try {
      sources.push({ file, text: await readFile(file, 'utf8') });
    } catch (error) {
      issues.push(wholeFile(file, `cannot read: ${(error as Error).message}`));
    }
  }
  if (issues.length > 0) throw new MappingError(issues);
  return compileMappings(sources);
}

/**
 * Compiles mapping texts, in the order given (rule order across files is fan-out order).
 * `schemas` reads the `.avsc` files rules name (the file system by default).
 */
export function compileMappings(
  sources: readonly MappingSource[],
  schemas: AvroSchemas = new AvroSchemas(),
): Mappings {
  const issues: MappingIssue[] = [];
  const files = sources.map((source) => readMappingFile(source.file, source.text, issues, schemas));
  const rules = files.flatMap((file) => file.rules);
  const downlink = files.flatMap((file) => file.downlink);
  const settings = mergeSettings(files, issues);
  // One name space for uplink and downlink rules: logs and metrics name rules alone.
  const first = new Map<string, { position: SourcePosition }>();
  for (const rule of [...rules, ...downlink]) {
    const earlier = first.get(rule.name);
    if (earlier === undefined) {
      first.set(rule.name, rule);
    } else {
      const message = `duplicate rule name "${rule.name}" (first defined at ${formatPosition(earlier.position)})`;
      issues.push({ ...rule.position, message });
    }
  }
  issues.push(...sourceConflicts(downlink));
  if (issues.length > 0) throw new MappingError(inFileOrder(issues, sources));
  return {
    uplink: new Router(rules, settings),
    downlink: new DownlinkRouter(downlink, settings.deadLetterTopic),
  };
}

/** `unmatched` and `deadLetter` apply to all files: each may be written in one file only. */
function mergeSettings(files: readonly MappingFile[], issues: MappingIssue[]): MappingSettings {
  const settings = { ...DEFAULT_SETTINGS };
  let unmatchedAt: SourcePosition | undefined;
  let deadLetterAt: SourcePosition | undefined;
  const twice = (name: string, at: SourcePosition, first: SourcePosition): void => {
    issues.push({ ...at, message: `"${name}" is already set at ${formatPosition(first)}` });
  };
  for (const file of files) {
    if (file.unmatched !== undefined) {
      if (unmatchedAt === undefined) {
        unmatchedAt = file.unmatched.position;
        settings.unmatched = file.unmatched.policy;
      } else {
        twice('unmatched', file.unmatched.position, unmatchedAt);
      }
    }
    if (file.deadLetter !== undefined) {
      if (deadLetterAt === undefined) {
        deadLetterAt = file.deadLetter.position;
        settings.deadLetterTopic = file.deadLetter.topic;
      } else {
        twice('deadLetter', file.deadLetter.position, deadLetterAt);
      }
    }
  }
  return settings;
}

/** Issues by file (in source order), then position; without repeats (aliased nodes are read twice). */
function inFileOrder(issues: MappingIssue[], sources: readonly MappingSource[]): MappingIssue[] {
  const fileOrder = new Map(sources.map((source, index) => [source.file, index] as const));
  const unique = new Map(issues.map((issue) => [formatIssue(issue), issue]));
  return [...unique.values()].sort(
    (a, b) =>
      (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) ||
      a.line - b.line ||
      a.column - b.column,
  );
}

async function mappingFiles(path: string): Promise<string[]> {
  let isFolder: boolean;
  try {
    isFolder = (await stat(path)).isDirectory();
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const reason = missing ? 'no such file or folder' : (error as Error).message;
    throw new MappingError([wholeFile(path, `cannot load mappings: ${reason}`)]);
  }
  if (!isFolder) {
    if (MAPPING_EXTENSIONS.includes(extname(path))) return [path];
    throw new MappingError([wholeFile(path, 'a mapping file must end in .yaml or .yml')]);
  }
  const names = (await readdir(path, { withFileTypes: true }))
    .filter((entry) => !entry.isDirectory() && MAPPING_EXTENSIONS.includes(extname(entry.name)))
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) {
    throw new MappingError([wholeFile(path, 'no mapping files (*.yaml, *.yml) in this folder')]);
  }
  return names.map((name) => join(path, name));
}

function wholeFile(file: string, message: string): MappingIssue {
  return { file, line: 0, column: 0, message };
}
