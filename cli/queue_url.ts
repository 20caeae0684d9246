// The queue URL of `experiment --queue` and `worker --queue`: redis://[user:password@]HOST[:PORT]/NAME.
// Pure string work with no imports, so the command declarations (which the web page bundles) can
// check the flag without loading anything of the queue.

export interface QueueUrl {
  host: string;
  port: number;
  name: string;
  username?: string;
  password?: string;
  /** The URL without its password (for messages). */
  shown: string;
}

const NAME = /^[A-Za-z0-9_-]{1,100}$/;
export const QUEUE_URL_FORM = 'redis://[:PASSWORD@]HOST:PORT/NAME (NAME: letters, digits, - and _)';

/** Parses redis://[user:password@]HOST[:PORT]/NAME (port 6379 when omitted); throws with the reason. */
export function parseQueueUrl(raw: string): QueueUrl {
  // Messages show the URL with its password hidden.
  const text = raw.replace(/^([a-z]+:\/\/[^/@]*?:)[^/@]*@/i, '$1***@');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`"${text}" is not a URL; expected ${QUEUE_URL_FORM}`);
  }
  if (u.protocol !== 'redis:') throw new Error(`"${text}": the scheme must be redis:, got ${u.protocol}; expected ${QUEUE_URL_FORM}`);
  if (!u.hostname) throw new Error(`"${text}" names no host; expected ${QUEUE_URL_FORM}`);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!NAME.test(name)) throw new Error(`"${text}": the queue name "${name}" must be 1-100 letters, digits, - and _; expected ${QUEUE_URL_FORM}`);
  if (u.search || u.hash) throw new Error(`"${text}": no query or fragment is taken; expected ${QUEUE_URL_FORM}`);
  const port = u.port ? Number(u.port) : 6379;
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port, name, username: u.username || undefined, password: u.password ? decodeURIComponent(u.password) : undefined, shown: `redis://${u.hostname}:${port}/${name}` };
}

/** The option check of --queue (a message, or undefined when the URL is well formed). */
export const queueUrlCheck = (v: string): string | undefined => {
  try {
    parseQueueUrl(v);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};
